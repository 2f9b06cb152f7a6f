-- Create the tasks not known yet (see create_task in move.lua).  ARGV: P,
-- clock, then (id, url, filename, report, window_start, window_end) for
-- each.  Returns {report, tasks created, ...}.
groups(6, 5, 6)
local at = now()
local created = {}
for i = 3, #ARGV, 6 do
  if create_task(i, at) then
    local report = ARGV[i + 3]
    created[report] = (created[report] or 0) + 1
  end
end
return flat(created)

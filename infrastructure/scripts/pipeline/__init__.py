"""genstack's deploy pipeline: the one path every deployment takes (`make deploy`
to AWS, `make local` and `make deploy ENDPOINT=...` to a local emulator, and
taskcat's packaging), as a package of small modules:

  console    messages on stderr, PipelineError
  session    the AWS (or emulator) session: region, credentials, endpoint, certificate
  config     samconfig.toml's environments, parameters and their validation; the typed requests
  events     stack events streamed, nested stacks included; the first failure
  stacks     one stack created or updated through a change set
  artifacts  the bootstrap stack's bucket per region, `sam build` and `sam package`
  outputs    root and nested stack outputs -> outputs/<env>.json (one format everywhere)
  checks     after a deploy: the first key, a smoke test, starter templates, the playground
  emulator   the only emulator-only step (an IAM action-name compensation)
  teardown   delete: buckets emptied, the stack deleted, what is retained listed
  regions    taskcat's scenarios packaged in each region they run in
  deploy     the whole sequence, for one region or several
  cli        the subcommands (python -m pipeline --help)
"""

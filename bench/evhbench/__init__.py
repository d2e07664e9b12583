"""evhost's benchmark runner (bench/run.py is its entry point).

  cli.py            the command line, the repetitions, the failures
  scenarios.py      which runs there are (and the --tls/--signed/--ops-load variants)
  runner.py         one run: subscriber, load generator, results, RSS, CPU
  evhost_config.py  the evhost YAML of a bench-plugin run
  ops_load.py       /metrics scrapes and idle connections during a run
  report.py         medians, the table, the goals, the plot, results.json/.md
  redis.py          a minimal RESP client and the private redis-server
  procs.py          ports, waiting, /proc (RSS, CPU time)
  certs.py          a CA and certificate (--tls), a signing key (--signed)
  names.py          the channel, the result list, the in-flight limit

  --jollyjet, the shipped deployments with their real plugins:
  jollyjet_scenarios.py  which runs, the shipped configs and their environment
  jollyjet_runner.py     one run, and how each figure is measured
  jollyjet_report.py     medians, the two tables, results.json/.md
  measures.py            evhost's event counts (/metrics), Redis's command counts

Standard library only.
"""

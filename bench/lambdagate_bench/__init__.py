"""The benchmark behind `bench/run` (see bench/README.md), one module per job:

    common   what every module shares: cases, body sizes, the fake function, logging
    procs    starting and stopping processes by PID, ports, HTTP, readiness
    prepare  apt-get / scripts/setup / cargo, scratch copies, machine info
    standin  the nginx Lambda stand-in and its 10 MiB event-stream file
    cases    the five cases' Envoy configs, the invoker config, starting them all
    load     wrk saturation and paced-latency runs, /proc CPU and RSS, streams
    report   medians, tables, ratio lines, the JSON file
    main     one run from set-up to clean-up, and its exit status

Python 3 standard library only.
"""

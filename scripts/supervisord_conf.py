"""Write the supervisord config for `make run`: the Procfile's processes,
`run_consumer` for every registered consumer (CONSUMER_REPLICAS_<NAME> processes
of it, 1 by default, each with a stable instance id: static group membership),
and the demo traffic (unless DEMO=0).

    python scripts/supervisord_conf.py > .run/supervisord.conf

`${VAR:-default}` in the Procfile is resolved here, from the environment of
`make run`, because supervisord runs commands without a shell.

`python scripts/supervisord_conf.py output --width N` is the event listener
that prints every program's output on supervisord's stdout, each line
prefixed with the time and the program's name (supervisord has no prefix of
its own).
"""

import os
import re
import shlex
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
RUN = ROOT / ".run"
PYTHON = ROOT / ".venv" / "bin" / "python"

# Every program. A process that exits after running startsecs is restarted at
# once; one that dies sooner is retried after 1 s, 2 s, 3 s, ... (supervisord's
# backoff grows by a second per failed start). startretries=100 (not the
# default 3) keeps a crash-looping program (Kafka down, a half-edited module)
# retrying for 1 + 2 + ... + 100 s, about 85 minutes, before supervisord gives
# up on it: FATAL in `make ps`, and `.venv/bin/supervisorctl -c
# .run/supervisord.conf start stack:NAME` tries again. Nothing a program does
# stops the others.
PROGRAM_OPTIONS = {
    "directory": str(ROOT),
    "autostart": "true",
    "autorestart": "true",
    "startsecs": "3",
    "startretries": "100",
    "stopsignal": "TERM",
    "stopwaitsecs": "15",  # then SIGKILL (gunicorn's graceful timeout is 10 s)
    "stopasgroup": "true",
    "killasgroup": "true",
    "redirect_stderr": "true",
    # Output goes to the `output` listener as events, not to a file.
    "stdout_logfile": "NONE",
    "stdout_events_enabled": "true",
    "environment": 'PYTHONUNBUFFERED="1"',
}

VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def expand(command):
    """Resolve ${VAR} and ${VAR:-default} from the environment."""
    return VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) or ""), command)


def procfile():
    """The fixed processes, from the repository's Procfile."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        yield name.strip(), command.strip()


def programs():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from streams.kafka.registry import consumers

    for name, command in procfile():
        yield name, command, 1
    for name in consumers():
        yield f"consumer-{name}", f".venv/bin/python manage.py run_consumer {name}", replicas(name)
    if os.environ.get("DEMO", "1") != "0":
        yield "demo", ".venv/bin/python manage.py demo_traffic --forever", 1


def replicas(consumer):
    """CONSUMER_REPLICAS_<NAME> (CONSUMER_REPLICAS_ORDER_WINDOWS=3): processes of one consumer."""
    variable = f"CONSUMER_REPLICAS_{consumer.upper()}"
    value = os.environ.get(variable, "1")
    if not value.isdigit() or not 1 <= int(value) <= 64:
        sys.exit(f"{variable}={value!r}: give a number of processes from 1 to 64")
    return int(value)


def argv(name, command):
    args = shlex.split(expand(command))
    if any(a in {"|", "||", "&&", ";", "&", ">", "<"} for a in args):
        sys.exit(f"{name}: supervisord runs commands without a shell: {command}")
    if "/" in args[0] and not os.path.isabs(args[0]):
        args[0] = str(ROOT / args[0])
    return shlex.join(args).replace("%", "%%")


def section(header, options):
    return "\n".join([f"[{header}]"] + [f"{k}={v}" for k, v in options.items()]) + "\n"


def config():
    progs = list(programs())
    width = max(len(name) + (3 if count > 1 else 0) for name, _, count in progs)
    sock = RUN / "supervisor.sock"
    parts = [
        section("supervisord", {
            "nodaemon": "true",  # in the foreground; Ctrl-C (SIGINT) stops every program
            "logfile": RUN / "supervisord.log",  # also printed, as nodaemon is set
            "logfile_maxbytes": "5MB",
            "logfile_backups": "1",
            "pidfile": RUN / "supervisord.pid",
            "childlogdir": RUN,
            # Running as root already: say so, or supervisord logs a CRIT line.
            **({"user": "root"} if os.getuid() == 0 else {}),
        }),
        section("unix_http_server", {"file": sock, "chmod": "0700"}),
        section("supervisorctl", {"serverurl": f"unix://{sock}"}),
        section("rpcinterface:supervisor", {
            "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface",
        }),
        # Starts first and stops last, so no program's last words are lost.
        section("eventlistener:output", {
            "command": shlex.join([str(PYTHON), str(SCRIPT), "output", "--width", str(width)]).replace("%", "%%"),
            "events": "PROCESS_LOG",
            "buffer_size": "10000",
            "priority": "1",
            "autorestart": "true",
            "stdout_logfile": "NONE",
            "stderr_logfile": "/dev/stdout",
            "stderr_logfile_maxbytes": "0",
        }),
    ]
    # One group, so that a shutdown stops every program at once (supervisord
    # stops groups one after another); supervisorctl names them stack:NAME.
    parts.append(section("group:stack", {"programs": ",".join(name for name, _, _ in progs)}))
    for name, command, count in progs:
        options = {"command": argv(name, command), **PROGRAM_OPTIONS}
        if name.startswith("consumer-"):
            # Each replica's own instance id (its process number): restarted after a crash,
            # it takes its partitions back without a rebalance (docs/kafka.md).
            options["command"] += " --instance-id %(process_num)d"
            if count > 1:
                options["numprocs"] = str(count)
                options["process_name"] = "%(program_name)s-%(process_num)d"
        parts.append(section(f"program:{name}", options))
    return "\n".join(parts)


def output(width):
    """Event listener: stdin/stdout speak supervisord's protocol, stderr prints."""
    from supervisor import childutils

    stdin, stdout, err = sys.stdin, sys.stdout, sys.stderr
    # supervisord counts `len` in characters of UTF-8 text; read it untranslated.
    stdin.reconfigure(encoding="utf-8", errors="replace", newline="")
    stdout.reconfigure(encoding="utf-8")
    err.reconfigure(encoding="utf-8", errors="replace")
    while True:
        _, payload = childutils.listener.wait(stdin, stdout)
        headers, data = childutils.eventdata(payload)
        prefix = f"{time.strftime('%H:%M:%S')} {headers['processname']:<{width}} | "
        err.write("".join(prefix + line + "\n" for line in data.splitlines()))
        err.flush()
        childutils.listener.ok(stdout)


if __name__ == "__main__":
    if sys.argv[1:2] == ["output"]:
        output(int(sys.argv[3]) if sys.argv[2:3] == ["--width"] else 20)
    else:
        sys.stdout.write(config())

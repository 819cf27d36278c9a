from __future__ import annotations


def consumed(processes, proc) -> int:
    """Messages a consumer process has handled so far (from its batch log lines)."""
    return sum(
        int(line.split("messages=")[1].split()[0])
        for line in processes.log(proc).splitlines()
        if "consumer_batch" in line
    )

"""Collects the timings of one benchmark run and prints the comparison table."""
import pytest

RESULTS = {}  # (workload, method) -> dict(seconds=..., parameters=...)


def record(workload, method, seconds, parameters, note=""):
    RESULTS[(workload, method)] = {"seconds": seconds, "parameters": parameters, "note": note}


def table():
    """Rows: workload, parameters, method, seconds, entries/s, speed-up against each baseline."""
    jax = any(method == "jax vmap fd" for _, method in RESULTS)  # an optional column: only when JAX ran
    lines = [f"{'workload':<8} {'parameters':>10} {'method':<22} {'seconds':>9} {'entries/s':>11} "
             f"{'vs numpy loop':>13} {'vs torch':>9}" + (f" {'vs jax':>9}" if jax else "")]
    for (workload, method), r in sorted(RESULTS.items(), key=lambda kv: (kv[0][0], kv[1]["seconds"])):
        numpy_time = RESULTS.get((workload, "numpy loop"), {}).get("seconds")
        torch_time = RESULTS.get((workload, "torch gradcheck"), {}).get("seconds")
        jax_time = RESULTS.get((workload, "jax vmap fd"), {}).get("seconds")
        speed = lambda base: f"{base / r['seconds']:.1f}x" if base else "-"
        lines.append(f"{workload:<8} {r['parameters']:>10,} {method:<22} {r['seconds']:>9.3f} "
                     f"{r['parameters'] / r['seconds']:>11,.0f} {speed(numpy_time):>13} {speed(torch_time):>9}"
                     + (f" {speed(jax_time):>9}" if jax else "")
                     + (f"  ({r['note']})" if r["note"] else ""))
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        terminalreporter.write_sep("=", "minnet gradient-check speed (same run, same machine)")
        terminalreporter.write_line(table())


@pytest.fixture
def results():
    return RESULTS

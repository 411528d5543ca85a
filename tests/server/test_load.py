"""Short load run inside the suite: gunicorn, 2 workers, 8 clients for ~10 s replaying real
callback requests (bench/load.py; the 60 s run is `bash scripts/load.sh`)."""
import pytest

from bench.load import report, run_load, verify_cache

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.mark.timeout(180)
def test_two_workers_eight_clients_no_errors_no_corrupt_entries(shared_server):
    srv = shared_server
    assert len(srv.worker_pids()) == 2
    log_from = srv.log_size()
    res = run_load(srv.url, clients=8, seconds=10, max_requests=5000)
    res["cache"] = verify_cache(srv.cache_dir)
    print("\n" + report(res))
    assert res["hung_clients"] == 0
    assert res["errors"] == 0, res["error_samples"]
    assert res["requests"] > 50
    assert {"run_new", "run_cached", "switch_head"} <= set(res["actions"])
    assert res["cache"]["corrupt"] == 0 and res["cache"]["runs"] >= 4
    assert "exited (replaced" not in srv.log_text(log_from)  # no worker died or timed out
    assert "Traceback" not in srv.log_text(log_from)

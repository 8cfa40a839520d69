"""The benchmark's profile summary, from a hand-made py-spy raw profile."""

from __future__ import annotations

from bench.profile import summarize

RAW = "\n".join(
    [
        "<module> (/x/services/orders/__main__.py:13);run (/v/site-packages/uvloop/__init__.py:92);"
        "Consumer._process (/work/main/libs/bus/consumer.py:400);"
        "record_hop (/work/main/libs/bus/hoplog.py:90) 30",
        "<module> (/x/services/orders/__main__.py:13);run (/v/site-packages/uvloop/__init__.py:92);"
        "Consumer._process (/work/main/libs/bus/consumer.py:400);"
        "Session.execute (/v/site-packages/sqlalchemy/orm/session.py:2000) 50",
        "<module> (/x/services/orders/__main__.py:13);run (/v/site-packages/uvloop/__init__.py:92);"
        "OrderActor.receive (/work/main/services/orders/actors/order.py:50) 20",
        "<module> (/x/services/orders/__main__.py:13);select (/usr/lib/python3.11/selectors.py:468) 900",
        "<module> (/x/services/orders/__main__.py:13);"
        "Runner.run (/usr/lib/python3.11/asyncio/runners.py:118) 400",
        "Thread.run (/usr/lib/python3.11/threading.py:982);"
        "_connection_worker_thread (/v/site-packages/aiosqlite/core.py:59) 700",
        "Thread.run (/usr/lib/python3.11/threading.py:982);"
        "_worker (/usr/lib/python3.11/concurrent/futures/thread.py:81) 300",
    ]
)


def test_idle_samples_are_left_out_and_shares_are_of_the_busy_ones():
    summary = summarize(RAW)

    assert summary["samples"] == 100
    inclusive = dict((name, share) for share, name in summary["inclusive"])
    assert inclusive["Consumer._process (libs/bus/consumer.py)"] == 0.8
    assert inclusive["OrderActor.receive (services/orders/actors/order.py)"] == 0.2
    assert "run (uvloop/__init__.py)" not in inclusive  # on every stack: says nothing
    leaves = dict((name, share) for share, name in summary["leaves"])
    assert leaves == {
        "Session.execute (sqlalchemy/orm/session.py)": 0.5,
        "record_hop (libs/bus/hoplog.py)": 0.3,
        "OrderActor.receive (services/orders/actors/order.py)": 0.2,
    }

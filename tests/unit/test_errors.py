"""A problem the user can fix is a ``RevleakError``: the command line prints it as one line and
exits 2 (the traceback only with ``--debug``), whichever part of revleak raised it."""

from __future__ import annotations

import pytest

from revleak import assets, cli, loader, price_signals
from revleak.checks import DataMissing
from revleak.errors import RevleakError
from revleak.reports import NotRecorded
from revleak.tickets.relay import TicketsFailed


@pytest.mark.parametrize("error", [
    RevleakError, DataMissing, TicketsFailed, price_signals.SignalsFailed,
    price_signals.SignalsRefused, assets.AirflowNotTold, loader.Refused, NotRecorded])
def test_a_user_mistake_is_one_line_and_exit_2(error, monkeypatch, capsys):
    def fails(args):
        raise error("no rate card for EUR; load rate_cards.csv with `revleak load DIR`")

    monkeypatch.setattr(cli, "cmd_stop", fails)
    assert cli.main(["stop"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("revleak: no rate card for EUR; load rate_cards.csv with "
                            "`revleak load DIR`\n")
    assert captured.out == ""
    with pytest.raises(error):
        cli.main(["--debug", "stop"])

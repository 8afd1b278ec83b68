import io

from rich.console import Console

from forklift.cli.progress import PlainTransferProgress, RichTransferProgress, transfer_progress

DIGEST = "sha256:" + "ab" * 32


def test_terminal_gets_a_bar_per_layer():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = transfer_progress(console)
    assert isinstance(progress, RichTransferProgress)
    with progress:
        progress.start(DIGEST, 2_000_000, "layer 1/1")
        progress.advance(DIGEST, 1_000_000)
        progress.finish(DIGEST, "downloaded")
    text = out.getvalue()
    assert "abababababab" in text and "downloaded" in text and "2.0 MB" in text


def test_pipes_get_plain_lines():
    assert isinstance(transfer_progress(Console(file=io.StringIO())), PlainTransferProgress)
    out = io.StringIO()
    with PlainTransferProgress(out) as progress:
        progress.start(DIGEST, 10, "config")
        progress.finish(DIGEST, "cached")
    assert out.getvalue().splitlines() == ["abababababab config: 10 bytes", "abababababab config: cached"]


RETRYING = "registry r.example unavailable (connection refused); retrying, up to 52 s left"


def test_a_retry_is_a_line_of_its_own_in_both():
    out = io.StringIO()
    with PlainTransferProgress(out) as progress:
        progress.start(DIGEST, 10, "config")
        progress.retrying(RETRYING)
    assert out.getvalue().splitlines()[-1] == RETRYING

    out = io.StringIO()
    with RichTransferProgress(Console(file=out, force_terminal=True, width=200)) as progress:
        progress.start(DIGEST, 2_000_000, "layer 1/1")
        progress.retrying(RETRYING)
        progress.finish(DIGEST, "downloaded")
    assert RETRYING in out.getvalue()

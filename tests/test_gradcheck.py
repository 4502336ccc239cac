"""The user-facing gradient-check command."""

import subprocess
import sys

from minirnnsearch import gradcheck, model


def test_command_exits_zero_on_the_correct_model():
    out = subprocess.run([sys.executable, "-m", "minirnnsearch.gradcheck", "--variant", "encdec"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dec.U_z" in out.stdout and "OK: worst" in out.stdout


def test_command_exits_nonzero_when_a_gradient_is_broken(monkeypatch, capsys):
    real = model.loss_and_grads

    def broken(params, cfg, batch, masks=None, label_smoothing=0.0):
        loss, grads = real(params, cfg, batch, masks, label_smoothing)
        grads["C_o"] = grads["C_o"] * 1.001  # a 0.1% error in one parameter's gradient
        return loss, grads

    monkeypatch.setattr(model, "loss_and_grads", broken)
    assert gradcheck.main(["--variant", "rnnsearch"]) == 1
    out = capsys.readouterr().out
    failing = [line.split()[0] for line in out.splitlines() if line.endswith("FAIL")]
    assert failing == ["C_o"]
    assert "FAILED" in out


def test_label_smoothing_reaches_the_check_and_the_cursors_are_checked_without_it(
        monkeypatch, capsys):
    """The command checks the smoothed loss: its gradients pass (test_model checks every
    variant's), gradients of the unsmoothed one fail; the cursors, which have no smoothing, are
    checked without it."""
    assert gradcheck.main(["--variant", "encdec", "--label-smoothing", "0.1"]) == 0
    assert gradcheck.main(["--variant", "cursors", "--label-smoothing", "0.1"]) == 0
    assert "OK: worst" in capsys.readouterr().out
    real = model.loss_and_grads

    def unsmoothed(params, cfg, batch, masks=None, label_smoothing=0.0):
        return real(params, cfg, batch, masks)

    monkeypatch.setattr(model, "loss_and_grads", unsmoothed)
    assert gradcheck.main(["--variant", "encdec", "--label-smoothing", "0.1"]) == 1
    assert gradcheck.main(["--variant", "encdec"]) == 0

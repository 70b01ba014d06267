from click.testing import CliRunner

from cli import main


def test_help_exits_zero():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "info" in result.output


def test_info_prints_official_parameter_counts():
    runner = CliRunner()
    out = runner.invoke(main, ["info", "--config", "configs/pretrain/tiny-1k.yaml"])
    assert out.exit_code == 0 and "parameters: 436,096" in out.output
    out = runner.invoke(main, ["info", "--config", "configs/pretrain/small-32k.yaml"])
    assert "parameters: 3,277,568" in out.output


def test_info_unknown_key_is_one_line_error():
    result = CliRunner().invoke(main, ["info", "--set", "model.d_modle=3"])
    assert result.exit_code == 1
    assert "unknown config key 'model.d_modle'" in result.output
    assert "Traceback" not in result.output


def test_info_corrupt_checkpoint_is_one_line_error(tmp_path):
    bad = tmp_path / "x.ckpt"
    bad.write_text("garbage")
    result = CliRunner().invoke(main, ["info", "--pretrained", str(bad)])
    assert result.exit_code == 1 and result.output.startswith("Error:")
    assert len(result.output.strip().splitlines()) == 1

import json

import pytest
import torch
from click.testing import CliRunner

from cli import main
from hyenadna import HyenaDNA, ModelConfig
from hyenadna.checkpoint import load_classifier, save_model
from hyenadna.config import FinetuneConfig, FinetuneTrainConfig, load_config, replace_dotted
from hyenadna.finetune import FinetuneModule, finetune, schedule
from hyenadna.heads import HeadConfig, HyenaDNAClassifier
from hyenadna.tasks import ClassificationDataset, collate, get_task, load_task_data

SMALL_MODEL = ["model.d_model=32", "model.n_layer=1", "model.l_max=450"]


def _cfg(tmp_path, task, folder, *overrides):
    return load_config(FinetuneConfig, None, [
        f"data.task={task}", f"data.path={folder}", f"train.out_dir={tmp_path / 'run'}",
        "train.progress_bar=false", "data.batch_size=16", *overrides])


def test_finetune_one_epoch_writes_metrics_and_loadable_checkpoint(tmp_path, data_dir):
    cfg = _cfg(tmp_path, "tf", data_dir / "gue/tf/0", "train.max_epochs=1")
    result = finetune(cfg)
    out = tmp_path / "run"
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == result
    assert result["protocol"] == "full" and result["init"] == "random"
    assert result["dev"]["n"] == 16 and result["test"]["n"] == 16
    assert set(result["test"]) == {"mcc", "f1", "accuracy", "auroc", "n"}
    assert result["steps"] == 2 and result["n_params"] == result["n_trainable_params"] > 0
    assert result["device"].startswith("cpu") and result["minutes"] > 0
    assert (out / "config.yaml").is_file() and (out / "logs" / "metrics.csv").is_file()

    ckpt = torch.load(out / "best.ckpt", weights_only=True)
    assert {k.split(".")[1] for k in ckpt["state_dict"]} == {"backbone", "head"}
    model, task = load_classifier(out / "best.ckpt")
    assert task == {"name": "tf", "class_names": ["unbound", "bound"], "seq_len": 101,
                    "rc_average": False, "protocol": "full"}
    # the loaded classifier reproduces the reported test metrics
    data = load_task_data(data_dir / "gue/tf/0", get_task("tf"), 1026)
    batch = collate([ClassificationDataset(data.test)[i] for i in range(len(data.test))])
    with torch.no_grad():
        preds = model.predict_proba(batch["input_ids"], batch["mask"]).argmax(-1)
    accuracy = (preds == batch["labels"]).float().mean().item()
    assert accuracy == pytest.approx(result["test"]["accuracy"])


def test_finetune_reduced_protocol_frozen_rc_weighted(tmp_path, data_dir):
    cfg = _cfg(tmp_path, "splice", data_dir / "gue/splice/reconstructed", *SMALL_MODEL,
               "train.max_steps=2", "train.freeze_backbone=true", "train.rc_average=true",
               "data.rc_aug=true", "train.class_weights=balanced", "head.hidden_dim=8")
    result = finetune(cfg)
    assert result["protocol"] == "reduced"
    assert result["protocol_detail"].startswith("reduced (no train.csv): train 39 rows")
    assert result["n_trainable_params"] == 32 * 8 + 8 + 8 * 3 + 3  # head MLP only
    assert result["steps"] == 2 and result["task"]["rc_average"] is True
    model, task = load_classifier(result["best_checkpoint"])
    assert task["class_names"] == ["acceptor", "donor", "neither"] and task["seq_len"] == 400
    assert model.head_config.hidden_dim == 8 and model.config.d_model == 32


def test_frozen_backbone_stays_in_eval_mode():
    model = HyenaDNAClassifier(ModelConfig(d_model=16, n_layer=1, l_max=64), HeadConfig())
    module = FinetuneModule(model, FinetuneTrainConfig(freeze_backbone=True), {}, 10)
    module.train()
    assert not model.backbone.training and model.head.training
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_finetune_from_own_pretraining_checkpoint_keeps_its_config(tmp_path, data_dir):
    torch.manual_seed(0)
    pretrained = HyenaDNA(ModelConfig(d_model=24, n_layer=1, l_max=130))
    save_model(pretrained, tmp_path / "pre.ckpt")
    cfg = _cfg(tmp_path, "tf", data_dir / "gue/tf/0", f"train.pretrained={tmp_path / 'pre.ckpt'}",
               "train.max_steps=1", "train.freeze_backbone=true")
    result = finetune(cfg)
    model, _ = load_classifier(result["best_checkpoint"])
    assert model.config.d_model == 24 and result["init"].endswith("pre.ckpt")
    for key, value in pretrained.backbone.state_dict().items():  # frozen: weights unchanged
        assert torch.equal(model.backbone.state_dict()[key], value), key


def test_finetune_raises_when_task_longer_than_pretrained_l_max(tmp_path, data_dir):
    save_model(HyenaDNA(ModelConfig(d_model=16, n_layer=1, l_max=64)), tmp_path / "short.ckpt")
    cfg = _cfg(tmp_path, "tf", data_dir / "gue/tf/0", f"train.pretrained={tmp_path}/short.ckpt")
    with pytest.raises(ValueError, match="task 'tf' needs sequences of 101 but the model's "
                                         "l_max is 64"):
        finetune(cfg)


def test_schedule_validates_at_least_once_within_the_step_budget():
    assert schedule(FinetuneTrainConfig(max_epochs=3), 10) == (30, 10)
    assert schedule(FinetuneTrainConfig(max_epochs=3, max_steps=4), 10) == (4, 4)
    assert schedule(FinetuneTrainConfig(max_epochs=9, val_every_steps=25), 10) == (90, 25)


@pytest.mark.parametrize("override,match", [
    ("train.max_steps=0", "train.max_steps must be -1"),
    ("train.class_weights=inverse", "train.class_weights must be"),
    ("train.precision=bf16", "train.precision must be one of"),
    ("data.dev_train_fraction=1.0", r"data.dev_train_fraction must be in \(0, 1\)"),
    ("data.num_classes=1", "data.num_classes must be >= 2"),
    ("train.warmup_fraction=2", r"train.warmup_fraction must be in \[0, 1\]"),
    ("train.lrr=1", "unknown config key 'train.lrr'"),
    ("train.lr=abc", "train.lr must be a number, got 'abc'"),
    ("train.max_steps=1.5", "train.max_steps must be an integer"),
])
def test_finetune_config_raises_naming_key(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(FinetuneConfig, None, [override])


def test_finetune_config_parses_yaml11_exponents():
    # regression: YAML 1.1 reads 6e-4 (no dot) as a string, which broke --set train.lr=6e-4
    cfg = load_config(FinetuneConfig, None, ["train.lr=6e-4", "train.max_steps=1e3"])
    assert cfg.train.lr == 6e-4 and cfg.train.max_steps == 1000


def test_shipped_finetune_configs_load():
    for name, task in [("promoter", "promoter"), ("core_promoter", "core-promoter"),
                       ("splice", "splice"), ("tf", "tf")]:
        cfg = load_config(FinetuneConfig, f"configs/finetune/{name}.yaml")
        assert cfg.data.task == task
    cfg = replace_dotted(cfg, {"data.path": "x", "train.lr": None})
    assert cfg.data.path == "x" and cfg.train.lr == 6e-4


def test_cli_finetune_help():
    result = CliRunner().invoke(main, ["finetune", "--help"])
    assert result.exit_code == 0
    for flag in ("--task", "--data", "--num-classes", "--pretrained", "--freeze-backbone",
                 "--max-steps", "--set"):
        assert flag in result.output


@pytest.mark.parametrize("args,match", [
    (["--task", "custom"], "--task custom needs --num-classes K"),
    (["--task", "tf", "--num-classes", "3"], "task 'tf' has 2 classes"),
    (["--task", "custom", "--num-classes", "2", "--data", "{bad}"],
     "dev.csv, line 3: invalid character 'X' at position 1"),
])
def test_cli_finetune_bad_input_is_one_error_line(tmp_path, args, match):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dev.csv").write_text("sequence,label\nACGT,0\nAXGT,1\n")
    (bad / "test.csv").write_text("sequence,label\nACGT,0\n")
    args = [a.replace("{bad}", str(bad)) for a in args]
    result = CliRunner().invoke(main, ["finetune", "--out-dir", str(tmp_path / "o"), *args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error:") and match in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_finetune_embedded_sample_says_so_first(tmp_path):
    result = CliRunner().invoke(main, [
        "finetune", "--task", "core-promoter", "--max-steps", "1", "--out-dir", str(tmp_path),
        "--set", "train.progress_bar=false", "--set", "model.n_layer=1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("No --data given: using the embedded GUE sample")
    assert any(line.split()[:2] == ["split", "MCC"] for line in lines)
    assert json.loads((tmp_path / "metrics.json").read_text())["embedded_sample"] is True


def _bench_args(tmp_path, data_dir, *extra):
    return [str(data_dir / "gue"), "--accelerator", "cpu", "--max-steps", "1",
            "--batch-size", "8", "--num-workers", "0", "--budget-minutes", "0",
            "--out-dir", str(tmp_path / "bench"), "--md", str(tmp_path / "gue.md"),
            "--set", "model.n_layer=1", *extra]


def test_gue_benchmark_writes_json_and_markdown(tmp_path, data_dir, load_benchmark):
    gue = load_benchmark("gue")
    args = _bench_args(tmp_path, data_dir, "--tasks", "prom/prom_300_all,tf/0")
    assert gue.main(args) == 0
    rows = json.loads((tmp_path / "gue.json").read_text())["rows"]
    assert [(r["task"], r["protocol"], r["init"]) for r in rows] == [
        ("prom/prom_300_all", "reduced", "random"), ("tf/0", "full", "random")]
    md = (tmp_path / "gue.md").read_text()
    assert "Reproduce: `python benchmarks/gue.py" in md and "| prom/prom_300_all | reduced |" in md
    assert "| task | protocol | init | dev MCC | test MCC |" in md


def test_gue_benchmark_finds_tasks_and_rejects_unknown(data_dir, load_benchmark):
    gue = load_benchmark("gue")
    assert gue.select_tasks(data_dir / "gue", None) == [
        "prom/prom_core_all", "prom/prom_300_all", "splice/reconstructed", "tf/0"]
    with pytest.raises(SystemExit, match="unknown GUE task 'tf/9'"):
        gue.select_tasks(data_dir / "gue", "tf/9")
    assert gue.init_label("none") == "random"
    assert gue.init_label("runs/pretrain/best.ckpt") == "pretrain/best.ckpt"
    assert gue.init_label("releases/hyenadna-tiny-1k-seqlen") == "hyenadna-tiny-1k-seqlen"


@pytest.mark.slow
def test_gue_benchmark_splits_tasks_over_devices(tmp_path, data_dir, load_benchmark):
    # two child processes (CPU stands in for two GPUs); their rows are merged in task order
    gue = load_benchmark("gue")
    tasks = "tf/0,prom/prom_core_all,splice/reconstructed"
    args = _bench_args(tmp_path, data_dir, "--tasks", tasks,
                       "--devices", "0,1")
    assert gue.main(args) == 0
    rows = json.loads((tmp_path / "gue.json").read_text())["rows"]
    assert [r["task"] for r in rows] == ["tf/0", "prom/prom_core_all", "splice/reconstructed"]


@pytest.mark.gpu
def test_finetune_on_gpu_uses_bf16_and_names_the_card(tmp_path, data_dir):
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    cfg = _cfg(tmp_path, "splice", data_dir / "gue/splice/reconstructed", "train.max_steps=3",
               "train.accelerator=gpu", "data.num_workers=2")
    result = finetune(cfg)
    assert result["precision"] in ("bf16-mixed", "16-mixed")
    assert result["device"] == torch.cuda.get_device_name(0)
    model, task = load_classifier(result["best_checkpoint"])  # loads on CPU
    assert task["name"] == "splice" and next(model.parameters()).device.type == "cpu"

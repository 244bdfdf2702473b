"""The `vla` command line: every documented `vla bench` command parses, each bench flag means one
thing, the policy registry resolves each kind of policy, and the CLI stays a thin composition root."""

import argparse
import re
import shlex
import subprocess
import sys

import pytest

from tests.helpers import REPO
from vla.cli import build_parser, main
from vla.cli.bench import BENCHMARKS
from vla.cli.policy_args import served_policy, with_planner
from vla.loading import SHIPPED_POLICY, policy_factory

PLACEHOLDERS = {"N": "1"}  # README writes `--train-steps N`: any integer stands in


def makefile_bench_commands(text: str) -> list[str]:
    """`vla bench ...` in a Makefile's recipes, continuation lines joined and $(VARIABLES) expanded."""
    text = text.replace("\\\n", " ")
    variables = {**dict(re.findall(r"^(\w+)\s*[:?]?=\s*(.*)$", text, flags=re.M)), "VLA": "vla"}
    commands = []
    for line in text.splitlines():
        if line.startswith("\t"):  # a recipe line
            for _ in range(3):  # variables that name variables
                line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), line)
            commands += [" ".join(c.split()) for c in re.findall(r"vla bench [^;&|]*", line)]
    return commands


def markdown_bench_commands(text: str) -> list[str]:
    """`vla bench ...` commands in Markdown: up to the closing backtick, a pipe, a comment, a bracket
    or the next `vla` command (one per line in a code block)."""
    text = re.sub(r"\s+", " ", text)  # a backticked command may wrap across lines
    return re.findall(r"vla bench [a-z-]+(?: (?!vla\b)[^\s`|#()]+)*", text)


def documented_bench_commands() -> list[tuple[str, str]]:
    found = [("Makefile", c) for c in makefile_bench_commands((REPO / "Makefile").read_text())]
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("policies/*/README.md"))]
    for path in docs:
        found += [(str(path.relative_to(REPO)), c) for c in markdown_bench_commands(path.read_text())]
    return found


DOCUMENTED = documented_bench_commands()


def parse(command: str) -> argparse.Namespace:
    argv = [PLACEHOLDERS.get(word, word) for word in shlex.split(command)][1:]  # without the leading `vla`
    return build_parser().parse_args(argv)


def test_the_extractors_find_the_commands_they_should():
    makefile = "VLA := .venv/bin/vla\nP = $(VLA) bench planner --episodes 3\nx:\n\t$(P) --arms flat \\\n\t\t--seed 1\n"
    assert makefile_bench_commands(makefile) == ["vla bench planner --episodes 3 --arms flat --seed 1"]
    assert markdown_bench_commands("run `vla bench\ngpu --repeats 5` | vla bench sim (`make`)") == [
        "vla bench gpu --repeats 5", "vla bench sim"]
    assert markdown_bench_commands("```\nvla bench chunk --out a\nvla bench peers --out b\n```") == [
        "vla bench chunk --out a", "vla bench peers --out b"]
    sources = {source for source, _ in DOCUMENTED}
    assert {"Makefile", "README.md", "docs/BENCHMARKS.md"} <= sources
    assert {c.split()[2] for _, c in DOCUMENTED} >= {"sim", "data", "decoding", "serving", "handover", "rosbag",
                                                     "ros-record", "sparsity", "gpu", "peers", "planner", "chunk"}


@pytest.mark.parametrize(("source", "command"), DOCUMENTED, ids=[f"{s}:{c[:60]}" for s, c in DOCUMENTED])
def test_every_documented_bench_command_parses(source, command, capsys):
    try:
        args = parse(command)
    except SystemExit:
        pytest.fail(f"{source}: `{command}` does not parse: {capsys.readouterr().err.strip()}")
    assert args.command == "bench" and args.benchmark == command.split()[2] and callable(args.func)


def test_every_benchmark_owns_its_flags_and_parses_with_defaults():
    for name, (module, _) in BENCHMARKS.items():
        args = build_parser().parse_args(["bench", name])
        assert args.func.__module__ == module and args.report is None, name


def test_bench_steps_are_named_by_what_they_count(capsys):
    assert parse("vla bench sim --control-steps 7").control_steps == 7
    assert parse("vla bench peers --train-steps 9").train_steps == 9
    assert parse("vla bench chunk --train-steps 9 --chunks 2,4").chunks == [2, 4]
    for name in ("sim", "peers", "chunk"):
        with pytest.raises(SystemExit):
            parse(f"vla bench {name} --steps 5")
        assert f"vla bench {name}: error: unrecognized arguments: --steps 5" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a flag of another benchmark is no flag of this one
        parse("vla bench gpu --sweep-episodes 3")
    with pytest.raises(SystemExit):
        parse("vla bench chunk --chunks 4,ten")
    assert "expected comma-separated integers" in capsys.readouterr().err


def test_rosbag_and_ros_record_default_to_their_own_durations(monkeypatch):
    import vla.cli.bench.ros as ros

    seen = []
    monkeypatch.setattr(ros, "bench_rosbag", lambda s: seen.append(("rosbag", s)) or {})
    monkeypatch.setattr(ros, "bench_ros_recording", lambda s: seen.append(("record", s)) or {})
    for argv in (["rosbag"], ["ros-record"], ["ros-record", "--duration", "3"]):
        args = build_parser().parse_args(["bench", *argv])
        assert args.func(args) == 0
    assert seen == [("rosbag", 30.0), ("record", 20.0), ("record", 3.0)]


def test_bench_arguments_are_checked_before_any_work(tmp_path, capsys):
    assert main(["bench", "peers"]) == 2
    assert "vla bench peers needs --dataset DIR" in capsys.readouterr().err
    assert main(["bench", "peers", "--dataset", str(tmp_path), "--policies", "act,dp"]) == 2
    assert "unknown ['dp']; expected names from vla, act, diffusion" in capsys.readouterr().err
    assert main(["bench", "planner"]) == 2
    assert "needs --planner DIR" in capsys.readouterr().err


def test_parsing_other_commands_does_not_import_torch():
    code = ("import sys; from vla.cli import build_parser; p = build_parser(); p.format_help(); "
            "p.parse_args(['client', 'health']); p.parse_args(['keys', '--out', 'x']); "
            "print([m for m in ('torch', 'vla.cli.train', 'vla.cli.record', 'vla.cli.dataset', 'vla.cli.bench.gpu') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_command_module_owns_its_flags():
    from vla.cli import COMMANDS

    argv = {"record": ["--episodes", "1", "--out", "o"], "train": ["--dataset", "d", "--out", "o"],
            "dataset": ["info", "d"], "arm-mask": []}
    assert set(argv) == set(COMMANDS)
    for name, (module, _) in COMMANDS.items():
        args = build_parser().parse_args([name, *argv[name]])
        assert args.func.__module__ == module and args.func.__name__ == "run", name
    assert build_parser().parse_args(["record", *argv["record"]]).seed == 1000  # evaluation seeds stay unseen
    assert build_parser().parse_args(["dataset", "from-rosbag", "b", "--out", "o"]).tolerance == 0.05


@pytest.mark.parametrize("objective", ["action", "planner"])
def test_train_prints_nothing_on_processes_that_get_no_summary(objective, monkeypatch, capsys):
    import vla.cli.train

    # under `accelerate launch`, every process but the main one gets {}
    monkeypatch.setattr(vla.cli.train, "train", lambda *a, **kw: {})
    monkeypatch.setattr(vla.cli.train, "train_planner", lambda *a, **kw: {})
    assert main(["train", "--objective", objective, "--init", "p", "--dataset", "d", "--out", "o"]) == 0
    assert capsys.readouterr().out == ""


def test_registry_resolves_the_scripted_kinds_and_refuses_what_does_not_apply():
    from sim import make_env, scripted_expert
    from sim.metaworld.experts import MetaWorldExpert
    from sim.tabletop.experts import ScriptedExpert, SkillExpert

    assert policy_factory("scripted") is scripted_expert  # each suite's own expert, chosen by the env
    for task, kind in (("pick", ScriptedExpert), ("metaworld/reach-v3", MetaWorldExpert)):
        env = make_env(task, image_size=16)
        assert type(policy_factory("scripted")(env)) is kind
        env.close()
    assert policy_factory("scripted-skills") is SkillExpert
    with pytest.raises(ValueError, match="--sparse applies to VLA policies"):
        policy_factory("scripted", sparsity=(object(), ()))


def test_n_action_steps_overrides_the_checkpoint_for_a_dense_vla_only():
    import numpy as np

    args = build_parser().parse_args(["eval", "--policy", str(SHIPPED_POLICY), "--n-action-steps", "5"])
    policy = served_policy(args)
    assert policy.n_action_steps == 5
    obs = {f"observation.images.{c}": np.zeros((128, 128, 3), np.uint8) for c in policy.model.config.cameras}
    chunk = policy.predict_chunk({**obs, "observation.state": np.zeros(8, np.float32), "task": "touch the red cube"})
    assert chunk.shape == (5, 8)
    assert policy_factory(str(SHIPPED_POLICY))(None).n_action_steps == 10  # the checkpoint's own
    with pytest.raises(ValueError, match=r"n_action_steps=21; expected 1..20"):
        policy_factory(str(SHIPPED_POLICY), n_action_steps=21)
    for name, sparsity in (("scripted", None), (str(SHIPPED_POLICY), (object(), ()))):
        with pytest.raises(ValueError, match="--n-action-steps applies to dense VLA policies"):
            policy_factory(name, sparsity=sparsity, n_action_steps=5)


def test_registry_refuses_an_unknown_policy_naming_it_and_the_kinds(tmp_path):
    with pytest.raises(ValueError, match=r"unknown policy 'scriptd'; expected 'scripted', 'scripted-skills', "
                                         r"a LeRobot checkpoint directory or a VLA checkpoint directory"):
        policy_factory("scriptd")
    with pytest.raises(ValueError, match="unknown policy .*no such directory"):
        policy_factory(str(tmp_path / "missing"))


def test_unknown_policy_is_a_clear_cli_error(capsys):
    assert main(["eval", "--policy", "nowhere/policy", "--tasks", "touch", "--episodes", "1", "--quiet"]) == 2
    assert "vla eval: error: unknown policy 'nowhere/policy'" in capsys.readouterr().err


def test_registry_routes_a_lerobot_checkpoint_to_the_peer_wrapper(tmp_path, monkeypatch):
    import vla.peers
    import vla.peers.lerobot_policy as lerobot_policy

    peer = object()
    monkeypatch.setattr(lerobot_policy, "is_lerobot_checkpoint", lambda path: path == str(tmp_path))
    monkeypatch.setattr(vla.peers.LeRobotPolicy, "from_pretrained", classmethod(lambda cls, path: peer))
    assert policy_factory(str(tmp_path))(None) is peer
    with pytest.raises(ValueError, match="apply to VLA policies, not to LeRobot checkpoints"):
        policy_factory(str(tmp_path), decoding="parallel")


def test_registry_loads_a_vla_checkpoint_dense_and_event_sparse():
    from vla.policy import VLAPolicy
    from vla.sparsity.policy import SparseVLAPolicy, load_sparsity_config

    dense = policy_factory(str(SHIPPED_POLICY), decoding="parallel")(None)
    assert isinstance(dense, VLAPolicy) and dense.metadata["chunk_size"] > 0
    sparse = policy_factory(str(SHIPPED_POLICY), sparsity=(load_sparsity_config(), ("scene",)))(None)
    assert isinstance(sparse, SparseVLAPolicy) and sparse.metadata["name"] == "tiny_sim_single-sparse"


def test_planner_flag_wraps_the_factory_in_the_planned_loop(monkeypatch):
    from vla.planner.planner import Planner
    from vla.planner.policy import PlannedPolicy

    class Stub:
        metadata = {"name": "stub"}

        def reset(self):
            pass

    made = {}
    monkeypatch.setattr(Planner, "from_pretrained",
                        classmethod(lambda cls, path, **kw: made.update(path=path, **kw) or Stub()))
    factory = lambda env: Stub()  # noqa: E731
    args = build_parser().parse_args(["eval", "--planner", "some/planner", "--system", "system2", "--no-replan"])
    planned = with_planner(factory, args)(None)
    assert isinstance(planned, PlannedPolicy) and planned.replan is False
    assert made == {"path": "some/planner", "system": "system2", "candidates": 4, "seed": 0}
    assert with_planner(factory, build_parser().parse_args(["eval"])) is factory


def test_serve_refuses_the_scripted_policies(capsys):
    for name in ("scripted", "scripted-skills"):
        with pytest.raises(ValueError, match="cannot be served"):
            served_policy(build_parser().parse_args(["serve", "--policy", name]))
    assert main(["serve", "--policy", "scripted"]) == 2
    assert "vla serve: error: --policy scripted: the scripted expert" in capsys.readouterr().err


def test_planner_objective_refuses_action_flags_and_needs_init(capsys):
    assert main(["train", "--objective", "planner", "--dataset", "d", "--out", "o", "--lora", "--chunk-size", "4"]) == 2
    assert "--lora, --chunk-size apply to the action objective only" in capsys.readouterr().err
    assert main(["train", "--objective", "planner", "--dataset", "d", "--out", "o"]) == 2
    assert "needs --init" in capsys.readouterr().err


def test_keys_are_created_once_unless_overwritten(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["keys", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["client.key", "client.key_secret", "server.key",
                                                      "server.key_secret"]
    assert (out / "server.key_secret").stat().st_mode & 0o077 == 0
    public = (out / "server.key").read_bytes()
    assert main(["keys", "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and (out / "server.key").read_bytes() == public
    assert main(["keys", "--out", str(out), "--overwrite"]) == 0 and (out / "server.key").read_bytes() != public


def test_cli_stays_a_composition_root():
    """Commands live in vla/cli, one small module per command or family (benchmarks in vla/cli/bench); the
    domain packages, the benchmarks' measurements and the policy registry import no command code and no
    argparse (issue 31)."""
    modules = sorted((REPO / "vla" / "cli").rglob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "rollouts.py", "serving.py", "train.py", "record.py",
                                         "dataset.py", "policy_args.py", "lazy.py"}
    assert {f"vla.cli.bench.{m.stem}" for m in modules if m.parent.name == "bench"} >= \
        {module for module, _ in BENCHMARKS.values()}
    for module in modules:
        source = module.read_text()
        assert len(source.splitlines()) < 250, module.name  # a ratchet against regrowth
        assert "\nimport torch" not in source, module.name  # torch is imported where a command runs, if at all
    domain = [REPO / "vla" / "loading.py"]
    for package in ("train", "data", "planner", "peers", "model", "sparsity", "control", "serving", "evaluate",
                    "bench"):
        domain += sorted((REPO / "vla" / package).rglob("*.py"))
    for path in domain:
        source = path.read_text()
        assert "argparse" not in source, f"{path.relative_to(REPO)} parses arguments: that belongs in vla/cli"
        assert "from vla.cli" not in source and "import vla.cli" not in source, \
            f"{path.relative_to(REPO)} imports command code"

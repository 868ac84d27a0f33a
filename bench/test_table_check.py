"""bench/table_check.py on a hand-worked case (run by `make test`)."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("table_check.py")
HEADER = "architecture,accuracy,params,mult_adds,seconds,dataset,protocol\n"


def check(tmp_path: Path, other_seed: bool = True) -> list[str]:
    # ppo found A (a recorded row, answer 0.75) and B (predicted 0.70, trained since at 0.68);
    # another seed trains A at 0.73 and B at 0.69; the seed's fidelity gives A 0.76 and B 0.71.
    (tmp_path / "top.tsv").write_text("ppo\taccuracy\tconv(64,3)\t0.75\t0\nppo\taccuracy\tconv(32,3)\t0.70\t1\n")
    (tmp_path / "table.csv").write_text(HEADER + '"conv(64,3)",0.75,1,1,1,cifar5,p\n"conv(32,3)",0.68,1,1,1,cifar5,p\n')
    (tmp_path / "seed1.csv").write_text(HEADER + '"conv(64,3)",0.73,1,1,1,cifar5,p\n"conv(32,3)",0.69,1,1,1,cifar5,p\n')
    (tmp_path / "ref.jsonl").write_text(
        "".join(json.dumps({"arch": a, "accuracy": x}) + "\n" for a, x in [("conv(64,3)", 0.76), ("conv(32,3)", 0.71)])
    )
    args = [str(tmp_path / n) for n in ("top.tsv", "table.csv", "ref.jsonl")]
    if other_seed:
        args.append(str(tmp_path / "seed1.csv"))
    out = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_every_column_and_the_winners_curse(tmp_path):
    lines = check(tmp_path)
    assert "| ppo | `conv(64,3)` | 0.7500 (recorded) | 0.7500 | 0.7300 | 0.7600 |" in lines
    assert "| ppo | `conv(32,3)` | 0.7000 (predicted) | 0.6800 | 0.6900 | 0.7100 |" in lines
    # Means: answers 0.725, proxy 0.715, another seed 0.71, seed's fidelity 0.735; the surrogate's
    # error on B +0.02; answer − another seed: (+0.02 + 0.01) / 2 = +0.015.
    assert "| ppo | 2 | 0.7250 | 0.7150 | 0.7100 | 0.7350 | +0.0200 (n=1) | +0.0150 (n=2) |" in lines
    assert not any("not yet trained" in line for line in lines)


def test_without_another_seed_its_columns_stay_empty(tmp_path):
    lines = check(tmp_path, other_seed=False)
    assert "| ppo | 2 | 0.7250 | 0.7150 | — | 0.7350 | +0.0200 (n=1) | — |" in lines
    assert not any("not yet trained" in line for line in lines)

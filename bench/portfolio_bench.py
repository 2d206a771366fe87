"""Selection over many candidates: N candidates phased over Y fiscal years, R staff roles,
with dependencies, exclusive pairs and must-fund items, solved exactly (HiGHS via scipy's milp).

Prints the CPU time of building the model, solving it, explaining every unfunded item and
tracing the seven-point efficient frontier, and writing the LP file.

    python bench/portfolio_bench.py [--candidates 2000] [--years 5] [--roles 20]
"""

from __future__ import annotations

import argparse
import random
import time

from itcrosswalk.core.portfolio.candidates import Candidate
from itcrosswalk.core.portfolio.select import build_model, reasons, select, solve, write_lp
from itcrosswalk.core.portfolio.settings import Scenario


def _city(
    n: int, years: int, roles: int, seed: int = 19
) -> tuple[list[Candidate], list[float], Scenario]:
    rng = random.Random(seed)
    first = 2028
    cands, values = [], []
    role_names = [f"Role{r:02d}" for r in range(roles)]
    for i in range(n):
        c = Candidate("bench", rng.choice(["servicenow", "jira_align", "project_online", "clarity"]),
                      "demand", f"id{i}", f"D{i:05d}", f"Candidate {i}", "submitted", "itd", None, {})  # fmt: skip
        start = first + rng.randrange(0, years)
        length = rng.randrange(1, years - (start - first) + 1)
        total = rng.randrange(50, 3000) * 1000.0
        c.yearly = {y: {"cost": round(total / length, 2)} for y in range(start, start + length)}
        for role in rng.sample(role_names, rng.randrange(1, 4)):
            c.roles[role] = {
                y: float(rng.randrange(100, 2000)) for y in range(start, start + length)
            }
        cands.append(c)
        values.append(round(rng.uniform(5, 100), 2))
    spend = sum(c.total_cost for c in cands) / years
    scenario = Scenario(
        budget=round(spend * 0.3, -3),
        fiscal_years=[f"FY{first + k}" for k in range(years)],
        capacity={r: 6000.0 for r in role_names},
        must_fund=[cands[k].ref for k in range(0, n, n // 10)][:10],
        depends={cands[k].ref: [cands[k - 1].ref] for k in range(5, n, 7)},
        exclusive=[[cands[k].ref, cands[k + 1].ref] for k in range(3, n - 1, 11)],
    )
    return cands, values, scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--roles", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=None, help="solver seconds per solve")
    args = parser.parse_args()
    cands, values, scenario = _city(args.candidates, args.years, args.roles)
    scenario.time_limit_seconds = args.time_limit
    t0 = time.process_time()
    model = build_model(cands, values, scenario)
    t1 = time.process_time()
    print(f"built {len(model.rows)} constraints in {t1 - t0:.3f} cpu s", flush=True)
    status, funded, value = solve(model)
    t2 = time.process_time()
    print(
        f"solved ({status}, gap {model.gap}, {len(funded)} funded) in {t2 - t1:.3f} cpu s",
        flush=True,
    )
    why = reasons(model, set(funded))
    t3 = time.process_time()
    full = select(model)
    t4 = time.process_time()
    text = write_lp(model)
    t5 = time.process_time()
    kinds: dict[str, int] = {}
    for entries in why.values():
        for kind, _text in entries:
            kinds[kind] = kinds.get(kind, 0) + 1
    print(f"candidates {len(cands)}, fiscal years {args.years}, roles {args.roles}, "
          f"constraints {len(model.rows)} (dependencies {len(scenario.depends)}, exclusive "
          f"{len(scenario.exclusive)}, must-fund {len(scenario.must_fund)})")  # fmt: skip
    print(f"status {status}: {len(funded)} funded, total score {value:.2f}")
    print(f"cpu seconds: build {t1 - t0:.3f}, solve {t2 - t1:.3f}, explain {t3 - t2:.3f}, "
          f"solve+explain+7-point frontier {t4 - t3:.3f}, LP file {t5 - t4:.3f} ({len(text) / 1e6:.1f} MB)")  # fmt: skip
    print(f"binding reasons of the unfunded: {dict(sorted(kinds.items()))}")
    print(f"selection status {full.status}; warnings: {full.warnings}")


if __name__ == "__main__":
    main()

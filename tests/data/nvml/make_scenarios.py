#!/usr/bin/python3
"""Writes the fake NVML scenarios that tests/data/sessions/*.db were recorded from.

    /usr/bin/python3 tests/data/nvml/make_scenarios.py      # rewrites the three files below

- gpu_stable_sawtooth.json      H100 80GB, training sawtooth on a fixed 30 GiB base, 60 s
- gpu_leak_under_sawtooth.json  H100 80GB, 20 GiB teeth on a base leaking 0.5 GiB/s; full at 59.5 s
- gpu_startup_ramp.json         24 GiB GPU, weights loading 1 -> 23.9 GiB in 8 s, then held at 99.6 %

All use "advance": "seconds" (the clock starts at the nvmlInit_v2 that loads the scenario) and
list every direct child of the monitoring process (`memscope run -- CMD`: CMD) as the GPU process.
No driver reservation (reserved 0): used + free = total, so the limit is the total either way.
Deterministic: the jitter comes from a seeded generator. Figures are whole MiB.
"""

import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

GIB = 1024  # MiB
H100_TOTAL_MIB = 81559  # what an H100 80GB HBM3 reports
CONTEXT_MIB = 256  # device memory not in the process's figure (driver, other contexts)


def state(used_mib, util, temp, watts, child_mib=None):
    child = used_mib - CONTEXT_MIB if child_mib is None else child_mib
    return {
        "used_mib": int(used_mib),
        "utilization_percent": int(util),
        "temperature_celsius": int(temp),
        "power_watts": int(watts),
        "processes": [{"pid": "child", "used_mib": int(max(child, 0))}],
    }


def write(name, description, seconds_per_state, device, states):
    total = device["total_mib"]
    for i, s in enumerate(states):
        assert 0 <= s["used_mib"] <= total, (name, i, s)
    lines = [
        "{",
        f'  "description": {json.dumps(description)},',
        '  "advance": "seconds",',
        f'  "seconds_per_state": {seconds_per_state},',
        '  "devices": [',
        "    {",
    ]
    for key, value in device.items():
        lines.append(f"      {json.dumps(key)}: {json.dumps(value)},")
    lines.append('      "states": [')
    for i, s in enumerate(states):
        comma = "," if i + 1 < len(states) else ""
        lines.append("        " + json.dumps(s) + comma)
    lines += ["      ]", "    }", "  ]", "}"]
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    print(f"{name}: {len(states)} states, last at {(len(states) - 1) * seconds_per_state:g} s")


# Training-step phases of a 2 s step at 0.5 s per state: forward activations pile up, then the
# step ends and they are freed. Utilization / power follow the phase.
PHASE_UTIL = [55, 80, 95, 98]
PHASE_WATTS = [380, 520, 640, 690]


def stable_sawtooth():
    rng = random.Random(1)
    base = 30 * GIB
    tooth = 4 * GIB
    states = []
    for i in range(121):  # 0 .. 60 s; state 120 (k = 0, activations freed) holds after 60 s
        t = i * 0.5
        k = i % 4
        used = base + k * tooth + rng.randint(-48, 48)
        temp = 45 + min(t, 30) // 2  # warms up to 60 °C over 30 s, then steady
        states.append(state(used, PHASE_UTIL[k], temp, PHASE_WATTS[k]))
    write(
        "gpu_stable_sawtooth.json",
        "One H100 80GB (81559 MiB, no reserved memory) under a healthy training loop: a fixed "
        "30 GiB of weights and optimizer state, and every 2 s step activations rise 4 GiB per "
        "state over 4 states (30 -> 34 -> 38 -> 42 GiB, +-48 MiB jitter) and are freed. No growth "
        "of the base: peaks stay at ~42 GiB (52 % of the total), the limit is never approached. "
        "121 states 0.5 s apart (0 .. 60 s); the last (base only, 30 GiB) holds. Each direct child "
        "of the monitoring process is listed as using the GPU (device used - 256 MiB).",
        0.5,
        {
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-5ab1e000-0000-4000-8000-000000000001",
            "total_mib": H100_TOTAL_MIB,
        },
        states,
    )


def leak_under_sawtooth():
    rng = random.Random(2)
    base0 = 30 * GIB
    leak_per_state = GIB // 4  # 256 MiB per 0.5 s = 0.5 GiB/s
    teeth = [0, 6827, 13653, 20 * GIB]  # 0, 1/3, 2/3 of 20 GiB, 20 GiB
    full = H100_TOTAL_MIB - 512  # 81047 MiB = 99.37 % of the total
    states = []
    i = 0
    while True:
        t = i * 0.5
        k = i % 4
        used = base0 + leak_per_state * i + teeth[k] + rng.randint(-32, 32)
        temp = 45 + min(t, 30) // 2
        if used >= full:  # the tooth that would no longer fit: the device is full from here on
            states.append(state(full, 100, temp, 700))
            break
        states.append(state(used, PHASE_UTIL[k], temp, PHASE_WATTS[k]))
        i += 1
    last_t = (len(states) - 1) * 0.5
    write(
        "gpu_leak_under_sawtooth.json",
        "One H100 80GB (81559 MiB, no reserved memory): a big training sawtooth with a slow leak. "
        "Every 2 s step activations rise by 20 GiB over 4 states (0, 6.7, 13.3, 20 GiB, +-32 MiB "
        "jitter) and are freed, on a base of 30 GiB that leaks 256 MiB per state (0.5 GiB/s), so "
        "the troughs and the peaks both grow 0.5 GiB/s: peaks at 51968 + 1024 n MiB at "
        "t = 1.5 + 2 n s. The last full tooth peaks at 80640 MiB (98.9 %) at t = 57.5 s; the "
        f"next one does not fit: from t = {last_t:g} s the device holds at {full} MiB "
        f"(99.4 % of the total; the job would OOM there). The peak line reaches the total at "
        "t = 59.3 s. States 0.5 s apart; the last holds. Each direct child of the monitoring "
        "process is listed as using the GPU (device used - 256 MiB).",
        0.5,
        {
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-1eac0000-0000-4000-8000-000000000002",
            "total_mib": H100_TOTAL_MIB,
        },
        states,
    )


def startup_ramp():
    total = 24 * GIB  # 24576 MiB, as an RTX 3090 reports
    start = GIB  # CUDA context and the framework: 1 GiB
    end = 24474  # 23.9 GiB = 99.58 % of the total
    states = [state(start, 0, 35, 110), state(start, 0, 35, 110)]  # 0 and 0.25 s: initialising
    steps = 31  # 0.5 .. 8.0 s loading, 0.25 s apart; loaded at 8.0 s
    for j in range(1, steps + 1):
        used = start + round((end - start) * j / steps)
        states.append(state(used, 5, 36, 130))
    states.append(state(end, 0, 37, 120))  # 8.25 s on: idle at 99.6 %, the first step never fits
    write(
        "gpu_startup_ramp.json",
        "A model too big for the device: one 24 GiB GPU (24576 MiB, no reserved memory). 1 GiB "
        "used at start (context), then weights load linearly from t = 0.5 s, 756.5 MiB per 0.25 s "
        "state (2.96 GiB/s), reaching 23.9 GiB (24474 MiB, 99.6 % of the total) at t = 8.0 s; it "
        "holds there (the job would OOM on its first step). 95 % is passed at t = 7.75 s "
        "(23718 MiB, 96.5 %), 99 % at t = 8.0 s. 34 states 0.25 s apart; the last holds. Each "
        "direct child of the monitoring process is listed as using the GPU (device used - 256 MiB).",
        0.25,
        {
            "name": "NVIDIA GeForce RTX 3090",
            "uuid": "GPU-0a3d0000-0000-4000-8000-000000000003",
            "total_mib": total,
        },
        states,
    )


if __name__ == "__main__":
    stable_sawtooth()
    leak_under_sawtooth()
    startup_ramp()

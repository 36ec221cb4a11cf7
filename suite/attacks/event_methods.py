"""The attacks of the event threat model (suite.attacks.event_threat), on a batch of recordings'
event counts C [B, T, 2, H, W], through the model's frames (`attack_frames`), with whatever
gradient the attacker's copy gives (every SNN gradient mode; an ANN's exact one). Each returns,
per budget and sample, the change to realise: counts (added and removed events) or moves.

    event-pgd            rounded PGD on the counts with an L0 projection (Büchel et al., "Adversarial
                         attacks on spiking convolutional neural networks for event-based vision",
                         Frontiers in Neuroscience 2022, code jubueche/SPAA `non_prob_fool`: the
                         gradient taken at the rounded iterate, the step added to the continuous
                         one, the changes ranked by size and cut to the budget). Here: `steps`
                         steps of EVENT_PGD_STEP events along g / max|g| (cross-entropy ascent),
                         each followed by the projection to the budget in events (cells kept in
                         decreasing |delta| while the rounded changes fit), the first iterate that
                         fools the model kept, else the one of highest loss.
    event-sparse         greedy grow, then reduce (SDA: Lun et al., CVPR 2025, code ryime/PDSG-SDA
                         `utils/attack.py` `SDA`): on the margin loss z_y - max_{j != y} z_j,
                         iteration n changes the SPARSE_INIT (n + 1) cells of largest |gradient|
                         whose sign says which way (add where it is negative, remove where
                         positive and an event can go), one event per cell and iteration, a cell
                         changed again in a later one only the same way (counts are integers:
                         SDA's binary frames change a cell once), until the label flips or the
                         budget is spent; then it reverts the longest prefix of
                         the changes (least gradient first) that keeps the label flipped (binary
                         search, as SDA's), and then every single change whose removal keeps it
                         flipped, until none does (SDA's finite differences per candidate are not
                         used: first-order ranking, exact reduction).
    event-retime         spike retiming (Yu et al., ICLR 2026, code yuyi-sd/Spike-Retiming-Attacks):
                         events move between time bins, every count of a pixel and polarity kept,
                         the budget counting events moved, each shift at most `max_shift` bins
                         (their B-inf). Here greedy like event-sparse on first-order gains: a move
                         of one event from bin s to t changes the cross-entropy by about g_t - g_s;
                         per iteration the best target of each source cell, the largest gains
                         first, then the same reduction.
    event-random         the floor: as many random changes as the budget, each adding an event to
                         a random cell (half of them) or removing a random event.
    event-random-retime  the floor for retiming: random events moved by a random shift within
                         `max_shift`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from suite.attacks.event_threat import Change, Recording, attack_frames, check_recording
from suite.data.frames import FrameConfig
from suite.results.attacks import RETIMING  # budgets count events moved

EVENT_PGD_STEP = 1.0  # events the largest-gradient cell moves per PGD step
SPARSE_INIT = 10  # SDA's k_init: iteration n changes k_init (n + 1) cells
EVENT_METHODS = ("event-pgd", "event-sparse", "event-retime", "event-random", "event-random-retime")


@dataclass
class Counts:
    """A batch of recordings as the attacks see them: counts, and how far each cell may go."""

    recordings: list[Recording]
    clean: Tensor  # [B, T, 2, H, W] float32
    low: Tensor  # the fewest events a cell may keep (its events at the recording's ends)
    high: Tensor  # the most it may get: none added where its bin has no room, else up to the clip
    addable: Tensor  # [B, T] bool
    config: FrameConfig

    @classmethod
    def of(cls, recordings: list[Recording], device) -> "Counts":
        config = recordings[0].config
        clean = torch.tensor(np.stack([r.counts for r in recordings]), dtype=torch.float32, device=device)
        removable = torch.tensor(np.stack([r.removable for r in recordings]), dtype=torch.float32, device=device)
        addable = torch.tensor(np.stack([r.addable for r in recordings]), device=device)
        width, height = recordings[0].sensor
        area = max(1, (width * height) // (config.size * config.size))  # sensor cells per frame pixel
        cap = 1.0 if config.binary else config.clip * area
        high = torch.where(addable[:, :, None, None, None], torch.clamp(clean, min=cap), clean)
        return cls(recordings, clean, clean - removable, high, addable, config)


class Objective:
    """The model seen through counts: losses, gradients and predictions of C [B, T, 2, H, W]."""

    def __init__(self, attacker: nn.Module, config: FrameConfig, y: Tensor):
        self.attacker, self.config, self.y = attacker, config, y

    def logits(self, C: Tensor) -> Tensor:
        return self.attacker(attack_frames(C, self.config))

    def grad(self, C: Tensor, loss: str = "ce") -> tuple[Tensor, Tensor, Tensor]:
        """(d loss / d C, per-sample loss, logits): loss "ce" (to raise) or "margin" (z_y - max
        other, to lower)."""
        C = C.detach().requires_grad_(True)
        with torch.enable_grad():
            z = self.logits(C)
            per = F.cross_entropy(z, self.y, reduction="none") if loss == "ce" else margin(z, self.y)
            (g,) = torch.autograd.grad(per.sum(), C)
        return g, per.detach(), z.detach()

    @torch.no_grad()
    def fooled(self, C: Tensor) -> Tensor:
        return self.logits(C).argmax(1) != self.y


def margin(z: Tensor, y: Tensor) -> Tensor:
    """z_y - max_{j != y} z_j per sample (negative: misclassified)."""
    own = z.gather(1, y[:, None]).squeeze(1)
    other = z.scatter(1, y[:, None], float("-inf")).amax(1)
    return own - other


# ----------------------------------------------------------------------------- event-pgd
def project_l0(delta: Tensor, budget: int) -> Tensor:
    """Keep, per sample, the cells of largest |delta| whose rounded changes fit the budget in
    events; zero the rest. delta [B, ...] -> [B, ...]."""
    flat = delta.flatten(1)
    order = flat.abs().argsort(dim=1, descending=True)
    cost = flat.round().abs().gather(1, order)
    keep_sorted = cost.cumsum(1) <= budget
    keep = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)
    return (flat * keep).view_as(delta)


def event_pgd(obj: Objective, counts: Counts, budget: int, steps: int) -> Tensor:
    """Integer changes [B, T, 2, H, W] within `budget` events (module docstring)."""
    C0 = counts.clean
    lo, hi = counts.low - C0, counts.high - C0
    delta = torch.zeros_like(C0)
    best = torch.zeros_like(C0)
    best_loss = torch.full((C0.shape[0],), -float("inf"), device=C0.device)
    done = torch.zeros(C0.shape[0], dtype=torch.bool, device=C0.device)
    for _ in range(steps):
        step = delta.round()
        g, loss, z = obj.grad(C0 + step, "ce")
        fooled = z.argmax(1) != obj.y
        better = ~done & (fooled | (loss > best_loss))
        best[better], best_loss[better] = step[better], loss[better]
        done |= fooled
        if bool(done.all()):
            break
        scale = g.flatten(1).abs().amax(1).clamp(min=1e-30).view(-1, *([1] * (g.dim() - 1)))
        delta = torch.clamp(delta + EVENT_PGD_STEP * g / scale, lo, hi)
        delta = project_l0(delta, budget)
    step = delta.round()
    last = ~done & obj.fooled(C0 + step)
    best[last] = step[last]
    return best


# ----------------------------------------------------------------------------- greedy grow and reduce
@dataclass
class Grown:
    """Per sample, the changes made in order: (flat cell index, change), and a score each."""

    changes: list[list[tuple]]
    scores: list[list[float]]


def _apply(C0: Tensor, changes: list[list[tuple]], kind: str) -> Tensor:
    """C0 with every sample's changes applied: cell changes (cell, +-1) or moves (src, dst)."""
    C = C0.clone()
    flat = C.view(C.shape[0], -1)
    for i, items in enumerate(changes):
        for change in items:
            _shift(flat[i], change, kind, 1)
    return C


def reduce_changes(obj: Objective, C0: Tensor, grown: Grown, fooled: Tensor, kind: str) -> list[list[tuple]]:
    """For each fooled sample, its changes less every one the flip does not need: the longest
    prefix (lowest scores first) whose reversal keeps the label flipped (binary search), then
    single changes, until no removal keeps it flipped. Others keep their changes."""
    order = [sorted(range(len(c)), key=lambda k: s[k]) for c, s in zip(grown.changes, grown.scores)]
    ranked = [[c[k] for k in o] for c, o in zip(grown.changes, order)]
    lo = [0] * len(ranked)
    hi = [len(r) if bool(f) else 0 for r, f in zip(ranked, fooled)]
    while any(a < b for a, b in zip(lo, hi)):
        mid = [(a + b + 1) // 2 if a < b else a for a, b in zip(lo, hi)]
        still = obj.fooled(_apply(C0, [r[m:] for r, m in zip(ranked, mid)], kind))
        for i, (a, b) in enumerate(zip(lo, hi)):
            if a < b:
                lo[i], hi[i] = (mid[i], b) if bool(still[i]) else (a, mid[i] - 1)
    kept = [r[m:] if bool(f) else r for r, m, f in zip(ranked, lo, fooled)]
    base = _apply(C0, kept, kind)
    changed = True
    while changed:  # single changes, until a whole pass removes none
        changed = False
        at = [0 if bool(f) else len(k) for k, f in zip(kept, fooled)]  # each sample's next change to try
        while any(a < len(k) for a, k in zip(at, kept)):
            trial = base.clone()
            trying = [i for i, (a, k) in enumerate(zip(at, kept)) if a < len(k)]
            for i in trying:
                _shift(trial[i].view(-1), kept[i][at[i]], kind, -1)
            still = obj.fooled(trial)
            for i in trying:
                if bool(still[i]):  # not needed: gone (the next change moves into its place)
                    base[i] = trial[i]
                    del kept[i][at[i]]
                    changed = True
                else:
                    at[i] += 1
    return kept


def _shift(flat: Tensor, change: tuple, kind: str, sign: int) -> None:
    """Make (sign 1) or revert (sign -1) one change in a sample's flat counts."""
    a, b = change
    if kind == "cells":
        flat[a] += sign * b
    else:
        flat[a] -= sign
        flat[b] += sign


def _grow(obj: Objective, counts: Counts, budget: int, kind: str, loss: str, pick: Callable) -> list[list[tuple]]:
    """The greedy attacks' loop: each iteration takes the gradient of `loss` at the changes so far,
    and `pick(g, C, want, active, grown)` appends up to `want[i]` changes to every sample still
    classified correctly with budget left, returning whether it added any. It stops when no sample
    is left, or an iteration adds nothing (a gradient that points nowhere new would repeat it);
    then `reduce_changes`."""
    C0 = counts.clean
    B = C0.shape[0]
    grown = Grown([[] for _ in range(B)], [[] for _ in range(B)])
    active = torch.ones(B, dtype=torch.bool, device=C0.device)
    for it in itertools.count():
        C = _apply(C0, grown.changes, kind)
        g, _, z = obj.grad(C, loss)
        active &= z.argmax(1) == obj.y
        room = torch.tensor([budget - len(c) for c in grown.changes], device=C0.device)
        active &= room > 0
        if not bool(active.any()):
            break
        want = torch.clamp(room, max=SPARSE_INIT * (it + 1))
        if not pick(g, C, want, active, grown):
            break
    fooled = obj.fooled(_apply(C0, grown.changes, kind))
    return reduce_changes(obj, C0, grown, fooled, kind)


def _best(score: Tensor, want: Tensor, active: Tensor) -> list[tuple[int, int, float]]:
    """(sample, index, score) of each active sample's `want[i]` highest positive scores [B, N],
    highest first."""
    top = score.topk(int(want.max()), dim=1)
    out = []
    for i in active.nonzero().flatten().tolist():
        for v, c in zip(top.values[i, : int(want[i])].tolist(), top.indices[i, : int(want[i])].tolist()):
            if not v > 0:
                break
            out.append((i, c, v))
    return out


def event_sparse(obj: Objective, counts: Counts, budget: int) -> list[list[tuple]]:
    """Per sample, the reduced cell changes (cell, +-1) of the greedy attack (module docstring),
    grown up to `budget` events."""
    B = counts.clean.shape[0]
    way = torch.zeros_like(counts.clean).view(B, -1)  # +1 added to, -1 removed from, 0 untouched: a cell changes one way
    low, high = counts.low.view(B, -1), counts.high.view(B, -1)

    def pick(g: Tensor, C: Tensor, want: Tensor, active: Tensor, grown: Grown) -> bool:
        g, flat = g.view(B, -1), C.view(B, -1)
        add = (g < 0) & (flat + 1 <= high) & (way >= 0)
        rm = (g > 0) & (flat - 1 >= low) & (way <= 0)
        chosen = _best(torch.where(add | rm, g.abs(), torch.zeros_like(g)), want, active)
        for i, c, v in chosen:
            sign = 1 if bool(add[i, c]) else -1
            grown.changes[i].append((c, sign))
            grown.scores[i].append(v)
            way[i, c] = sign
        return bool(chosen)

    return _grow(obj, counts, budget, "cells", "margin", pick)


def event_retime(obj: Objective, counts: Counts, budget: int, max_shift: int | None) -> list[list[tuple]]:
    """Per sample, the reduced moves (source cell, target cell) of the greedy retiming (module
    docstring), grown up to `budget` events moved."""
    C0 = counts.clean
    B, T = C0.shape[0], C0.shape[1]
    D = T - 1 if max_shift is None else max_shift
    line = C0[0, 0].numel()  # cells per time bin: 2 H W
    shift = torch.arange(T, device=C0.device)
    allowed = ((shift[None, :] - shift[:, None]).abs() <= D) & (shift[None, :] != shift[:, None])  # [from, to]
    left = (C0 - counts.low).view(B, -1).clone()  # the events each cell has that may move (each moves once)

    def pick(g: Tensor, C: Tensor, want: Tensor, active: Tensor, grown: Grown) -> bool:
        can_leave = (left >= 1).view_as(C)  # [B, T, 2, H, W]: an event of its own to move
        can_come = (C + 1 <= counts.high) & counts.addable[:, :, None, None, None]
        gain = g[:, None] - g[:, :, None]  # [B, from, to, 2, H, W]: g_to - g_from
        ok = allowed[None, :, :, None, None, None] & can_leave[:, :, None] & can_come[:, None]
        gain = torch.where(ok, gain, torch.full_like(gain, -float("inf")))
        best, target = gain.max(dim=2)  # [B, from, 2, H, W]
        chosen = _best(best.view(B, -1), want, active)
        for i, c, v in chosen:
            rest = c % line
            grown.changes[i].append((c, int(target.view(B, -1)[i, c]) * line + rest))
            grown.scores[i].append(v)
            left[i, c] -= 1
        return bool(chosen)

    return _grow(obj, counts, budget, "moves", "ce", pick)


# ----------------------------------------------------------------------------- random floors
def _draw_removable(removable: np.ndarray, rng: np.random.Generator) -> int:
    """A random removable event's flat cell (each event equally likely), taken out of `removable`."""
    k = int(rng.choice(removable.size, p=removable / removable.sum()))
    removable[k] -= 1
    return k


def event_random(r: Recording, budget: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`budget` random changes of one recording, in order, each (flat cell, +1 or -1): an event
    added to a random cell of a bin with room (probability 1/2), or a random removable event
    removed. A smaller budget takes the first changes (the floors' draws are nested)."""
    removable = r.removable.astype(np.int64).ravel().copy()
    cells = np.flatnonzero(np.broadcast_to(r.addable[:, None, None, None], r.counts.shape).ravel())
    changes = []
    for _ in range(budget):
        if len(cells) and (rng.random() < 0.5 or removable.sum() == 0):
            changes.append((int(cells[int(rng.integers(len(cells)))]), 1))
        elif removable.sum() > 0:
            changes.append((_draw_removable(removable, rng), -1))
    return changes


def event_random_retime(r: Recording, budget: int, max_shift: int | None, rng: np.random.Generator) -> np.ndarray:
    """`budget` random moves of one recording, rows (from bin, to bin, p, y, x): random removable
    events, each shifted by a random nonzero number of bins within `max_shift` to a bin with room.
    A smaller budget takes the first moves."""
    T = r.config.timesteps
    D = T - 1 if max_shift is None else max_shift
    removable = r.removable.astype(np.int64).ravel().copy()
    moves = []
    while len(moves) < budget and removable.sum() > 0:
        b, p, y, x = np.unravel_index(_draw_removable(removable, rng), r.removable.shape)
        targets = [t for t in range(max(0, b - D), min(T, b + D + 1)) if t != b and r.addable[t]]
        if targets:
            moves.append((b, targets[int(rng.integers(len(targets)))], p, y, x))
    return np.array(moves, dtype=np.int64).reshape(-1, 5)


def changes_to_delta(shape: tuple[int, ...], changes: list[tuple]) -> np.ndarray:
    """Cell changes (flat index, +-1) as integer counts."""
    delta = np.zeros(int(np.prod(shape)), dtype=np.int64)
    for c, s in changes:
        delta[c] += s
    return delta.reshape(shape)


def changes_to_moves(shape: tuple[int, ...], changes: list[tuple]) -> np.ndarray:
    """Moves (flat source, flat target) as rows (from bin, to bin, p, y, x)."""
    rows = []
    for src, dst in changes:
        b, p, y, x = np.unravel_index(src, shape)
        rows.append((b, np.unravel_index(dst, shape)[0], p, y, x))
    return np.array(rows, dtype=np.int64).reshape(-1, 5)


def craft_events(attacker: nn.Module, method: str, recordings: list[Recording], y: Tensor, budgets: list[int],
                 seed: Callable[[int, int], int], steps: int, max_shift: int | None) -> dict[int, list[Change]]:
    """`method` on a batch of recordings at every budget (0: no change): budget -> per-sample
    Change. `seed(budget, i)` seeds the realisation of sample i's change (which events go, where
    added ones fall in their bins) and a random floor's draws. Every adversarial recording is
    checked against the threat model (suite.attacks.event_threat.check_recording)."""
    counts = Counts.of(recordings, y.device)
    obj = Objective(attacker, counts.config, y)
    shape = tuple(counts.clean.shape[1:])
    top = max(budgets)
    # the greedy attacks grow once, to the largest budget (smaller ones keep the best changes); the
    # random floors draw once (smaller budgets take the first draws)
    grown = None
    if method == "event-sparse" and top > 0:
        grown = event_sparse(obj, counts, top)
    elif method == "event-retime" and top > 0:
        grown = event_retime(obj, counts, top, max_shift)
    elif method == "event-random":
        draws = [event_random(r, top, np.random.default_rng(seed(-1, i))) for i, r in enumerate(recordings)]
    elif method == "event-random-retime":
        draws = [event_random_retime(r, top, max_shift, np.random.default_rng(seed(-1, i)))
                 for i, r in enumerate(recordings)]
    out: dict[int, list[Change]] = {}
    for k in budgets:
        pgd = event_pgd(obj, counts, k, steps).round().to(torch.int64).cpu().numpy() \
            if method == "event-pgd" and k > 0 else None
        changes = []
        for i, r in enumerate(recordings):
            rng = np.random.default_rng(seed(k, i))
            if k == 0:
                change, target = Change(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=r.events.dtype)), r.counts
            elif method in RETIMING:
                moves = changes_to_moves(shape, grown[i][-k:]) if method == "event-retime" else draws[i][:k]
                change, target = r.realise_moves(moves, rng), r.counts.copy()
                np.add.at(target, (moves[:, 0], moves[:, 2], moves[:, 3], moves[:, 4]), -1)
                np.add.at(target, (moves[:, 1], moves[:, 2], moves[:, 3], moves[:, 4]), 1)
            else:
                delta = (pgd[i] if pgd is not None else changes_to_delta(shape, grown[i][-k:])
                         if method == "event-sparse" else changes_to_delta(shape, draws[i][:k]))
                change, target = r.realise(delta, rng), r.counts + delta
            check_recording(r.apply(change), r, target, k, change.changed)
            changes.append(change)
        out[k] = changes
    return out

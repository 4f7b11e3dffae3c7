"""The lessons, as data: one entry each, in the order the Lessons page lists them.

An entry says what the student answers (`kind`), which function finds the right answer in the model
(`solve`, in explain/lessons_*.py: it returns a `Problem` for a checkpoint and an input), the hint a wrong
answer gets, and the page to explore further. No entry holds an answer. To add a lesson, write a solve
function and add an entry here (README.md, "Lessons"); its slug is its URL: /lessons?lesson=<slug>.
"""

from __future__ import annotations

from .lesson_types import Lesson
from .lessons_basic import cache_bytes_problem, causal_mask_problem, chance_halves_problem, mirror_head_problem
from .lessons_more import solve_alignment, solve_head_off, solve_padding
from .lessons_more_scores import solve_rope_relative, solve_scaling

REVERSAL_GPTS = ("reversal-mha", "reversal-gqa", "reversal-mqa", "reversal-rope", "reversal-mla")

LESSONS: tuple[Lesson, ...] = (
    Lesson(
        slug="causal-mask",
        title="The causal mask",
        kind="cells",
        solve=causal_mask_problem,
        checkpoints=REVERSAL_GPTS + ("shakespeare-mha", "shakespeare-mqa"),
        hint=("Row *i* is the token at position *i*. The tokens after it are the ones the model learns to predict: "
              "which of them could it look at without cheating?"),
        explore="pages/attention_steps.py",
        explore_label="See the mask added to the scores, step by step",
    ),
    Lesson(
        slug="chance-halves",
        title="Why the first half is at chance",
        kind="numbers",
        solve=chance_halves_problem,
        checkpoints=REVERSAL_GPTS,
        hint=("Can anything before a random symbol tell which symbol comes next? And by the time the model writes "
              "the reversed half, which symbols has it already read?"),
        explore="pages/heads_off.py",
        explore_label="See the accuracy at every position, and switch heads off",
    ),
    Lesson(
        slug="mirror-head",
        title="Where does this head look?",
        kind="choice",
        solve=mirror_head_problem,
        checkpoints=REVERSAL_GPTS,
        hint=("The query at position *p* writes the symbol at position *p* + 1 of the whole sequence, which copies "
              "one symbol of the prompt. Count from the end of the prompt: which position holds it?"),
        explore="pages/heatmaps.py",
        explore_label="See every head of this layer as heatmaps",
    ),
    Lesson(
        slug="cache-bytes",
        title="KV-cache bytes",
        kind="number",
        solve=cache_bytes_problem,
        checkpoints=("reversal-mha", "reversal-gqa", "reversal-mqa", "reversal-mla", "shakespeare-mha",
                     "shakespeare-mqa"),
        hint=("Count the numbers cached for one token in one layer (K and V: H_kv × d_head each; MLA: the latent "
              "and the rotary key), then multiply by the layers, the tokens and the bytes per number."),
        explore="pages/kv_cache.py",
        explore_label="Watch the cache grow while the model generates",
    ),
    Lesson(
        slug="padding-mask",
        title="Padding a batch",
        kind="cells",
        solve=solve_padding,
        checkpoints=("reversal-mha", "dates") + REVERSAL_GPTS[1:] + ("shakespeare-mha", "shakespeare-mqa"),
        hint=("A batch is a rectangle: the shorter row is filled up to the longer one's length, on the side the "
              "question names. The padding mask hides exactly the filler, as keys, from every query of its row."),
        explore="pages/heatmaps.py",
        explore_label="See both rows of the padded batch, their masks and heatmaps",
    ),
    Lesson(
        slug="cross-attention-alignment",
        title="Cross-attention as alignment",
        kind="cells",
        solve=solve_alignment,
        checkpoints=("dates",),
        hint=("Which part of the source decides the month? Then, for each row, add up the largest weights "
              "until you reach half: the heatmaps page shows the weights of every head of that layer."),
        explore="pages/heatmaps.py",
        explore_label="See every cross-attention head of the dates model",
    ),
    Lesson(
        slug="head-off",
        title="Switch a head off",
        kind="choice",
        solve=solve_head_off,
        checkpoints=("reversal-mha", "reversal-mqa", "reversal-rope", "reversal-mla"),
        hint=("Look at each head's heatmap: which one reads the prompt symbol that is being copied? A head whose "
              "work another head also does can be switched off at little cost."),
        explore="pages/heads_off.py",
        explore_label="Switch heads off yourself, and find the important ones",
    ),
    Lesson(
        slug="scaling",
        title="Scaling by √d_head",
        kind="choice",
        solve=solve_scaling,
        checkpoints=REVERSAL_GPTS + ("dates", "shakespeare-mha", "shakespeare-mqa"),
        hint=("Without the division every score is √d_head times larger, and so is every gap between two scores. "
              "What does a softmax do with larger gaps, and how much is there to lose in weights that are "
              "already sharp?"),
        explore="pages/attention_steps.py",
        explore_label="See the scores before and after the scaling, and the softmax, step by step",
    ),
    Lesson(
        slug="rope-relative",
        title="RoPE sees only distances",
        kind="choice",
        solve=solve_rope_relative,
        checkpoints=("reversal-rope", "reversal-mla"),
        hint=("RoPE turns q by an angle proportional to its position m and k by one proportional to n; a dot "
              "product only sees the angle between two vectors. Which placements keep that angle?"),
        explore="pages/positional.py",
        explore_label="Turn q and k with RoPE and see the score against the distance",
    ),
)


def find_lesson(slug: str) -> Lesson | None:
    """The catalog's lesson with this slug, or None."""
    return next((lesson for lesson in LESSONS if lesson.slug == slug), None)

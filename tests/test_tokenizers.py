"""Tokenizers: round trips, vocabulary rules, serialisation and error messages."""

from __future__ import annotations

import json

import pytest

from model.tokenizers import CharTokenizer, SymbolTokenizer, WordTokenizer, split_words, tokenizer_from_dict


def test_symbol_round_trip_and_default_vocab():
    tok = SymbolTokenizer.of_size(10)
    assert tok.tokens == [str(i) for i in range(10)]
    assert tok.vocab_size == 10
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (None, None, None, None)
    assert tok.encode("4 1  7\n") == [4, 1, 7]
    assert tok.decode([4, 1, 7]) == "4 1 7"
    assert tok.tokenize("4 1 7") == ["4", "1", "7"]
    assert tok.id_to_token(9) == "9"


def test_symbol_unknown_is_named():
    tok = SymbolTokenizer(["a", "b", "c"])
    assert tok.unknown_in("a x b yy x") == ["x", "yy"]
    with pytest.raises(ValueError, match="'x'.*'yy'"):
        tok.encode("a x b yy")


@pytest.mark.parametrize("bad", [["a", "a"], ["a b"], [""], []])
def test_symbol_rejects_bad_vocab(bad):
    with pytest.raises(ValueError):
        SymbolTokenizer(bad)


def test_char_specials_first_and_round_trip():
    tok = CharTokenizer("abc -")
    assert tok.tokens[:3] == ["<pad>", "<s>", "</s>"]
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (0, 1, 2, None)
    ids = tok.encode("ab - c")
    assert tok.decode(ids) == "ab - c"
    assert tok.decode([tok.bos_id] + ids + [tok.eos_id, tok.pad_id]) == "ab - c"
    assert tok.decode([tok.bos_id, 3], skip_specials=False) == "<s>a"
    assert tok.chars == ["a", "b", "c", " ", "-"]


def test_char_unknown_characters_all_named():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError) as err:
        tok.encode("abXcY!X")
    message = str(err.value)
    assert "'X'" in message and "'Y'" in message and "'!'" in message
    assert tok.unknown_in("abXcY!X") == ["X", "Y", "!"]
    assert tok.unknown_in("<s>") == ["<", "s", ">"]  # specials are never typed in


def test_id_out_of_range():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        CharTokenizer("ab").id_to_token(5)


def test_split_words_whitespace_policy():
    text = "Who's there?\n\n  Nay,\tanswer  me:\r\nstand"
    assert split_words(text) == [
        "Who",
        "'",
        "s",
        " ",
        "there",
        "?",
        "\n",
        "Nay",
        ",",
        " ",
        "answer",
        " ",
        "me",
        ":",
        "\n",
        "stand",
    ]
    assert split_words("--Ay.") == ["-", "-", "Ay", "."]
    assert split_words("") == []


def test_word_round_trip_is_normalised_text():
    text = "To be, or not to be: that is the question.\n\nWhether 'tis nobler"
    tok = WordTokenizer.build(text, max_vocab=1000)
    assert tok.unk_id == 0 and tok.tokens[0] == "<unk>"
    assert tok.decode(tok.encode(text)) == text.replace("\n\n", "\n")
    assert "".join(tok.tokenize(text)) == tok.decode(tok.encode(text))


def test_word_build_order_and_cap():
    tok = WordTokenizer.build("b a b c a b d", max_vocab=4)
    # counts: " " 6, b 3, a 2, c 1, d 1 -> ties broken alphabetically, capped at 4 with unk
    assert tok.tokens == ["<unk>", " ", "b", "a"]
    assert tok.encode("a c") == [3, 1, 0]
    assert tok.tokenize("a c") == ["a", " ", "<unk>"]
    assert tok.unknown_in("a c d c") == ["c", "d"]
    assert tok.decode(tok.encode("a c")) == "a <unk>"


def test_word_unk_kept_where_given():
    tok = WordTokenizer(["x", "<unk>", "y"])
    assert tok.unk_id == 1 and tok.encode("z") == [1]
    assert WordTokenizer(["x"]).tokens == ["<unk>", "x"]


@pytest.mark.parametrize(
    "tok",
    [
        SymbolTokenizer.of_size(5),
        CharTokenizer("xyz", specials=("[P]", "[B]", "[E]")),
        WordTokenizer.build("the cat sat on the mat", 6),
    ],
    ids=["symbol", "char", "word"],
)
def test_to_dict_round_trip_through_json(tok):
    d = json.loads(json.dumps(tok.to_dict()))
    assert d["type"] in {"symbol", "char", "word"}
    back = tokenizer_from_dict(d)
    assert type(back) is type(tok) and back == tok
    assert back.tokens == tok.tokens
    assert (back.pad_id, back.bos_id, back.eos_id, back.unk_id) == (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id)


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ([1, 2], "must be a dict"),
        ({"type": "bpe"}, "unknown tokenizer type 'bpe'"),
        ({}, "unknown tokenizer type None"),
        ({"type": "symbol"}, r"lacks \['symbols'\]"),
        ({"type": "symbol", "symbols": "abc"}, "must be a list of strings"),
        ({"type": "char", "chars": ["a"], "specials": ["<pad>"]}, "exactly"),
        ({"type": "word", "tokens": ["a"], "unk": 3}, "must be a string"),
        ({"type": "word", "tokens": ["a"], "unk": "<unk>", "extra": 1}, "unknown keys"),
        ({"type": "symbol", "symbols": ["a", "a"]}, "duplicate"),
    ],
)
def test_from_dict_errors(d, message):
    with pytest.raises(ValueError, match=message):
        tokenizer_from_dict(d)

"""Tiny random-init causal LMs (GPT-2, GPT-NeoX, Llama) with a word-level tokenizer, for fast tests.

``tiny_loaded_model("llama")`` builds a 2-layer, hidden-32 model in well under a second and
wraps it as a :class:`taskspace_core.models.LoadedModel` (fp32, CPU, eval mode, grads off),
exactly as ``load_model`` would. ``train_tiny`` teaches it a toy language in a few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from taskspace_core.models import LoadedModel, ModelSpec, weight_fingerprint

ARCHS = ("gpt2", "gpt_neox", "llama")
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")

# A toy English: enough words for agreement-like phenomena (number on nouns, verbs,
# determiners and reflexives).
NOUNS = ("dog", "cat", "bird", "fox", "horse", "cow", "frog", "wolf", "bear", "duck", "goat", "mouse")
NOUNS_PL = ("dogs", "cats", "birds", "foxes", "horses", "cows", "frogs", "wolves", "bears", "ducks", "goats", "mice")
VERBS = ("runs", "sleeps", "sings", "jumps", "eats", "swims")
VERBS_PL = ("run", "sleep", "sing", "jump", "eat", "swim")
TOY_WORDS = (
    *NOUNS, *NOUNS_PL, *VERBS, *VERBS_PL,
    "the", "this", "these", "that", "those", "i", "see", "saw", "itself", "themselves", "it", "them", "and",
    "a", "every", "who", "is", "are", "man", "men", "woman", "women", "likes", "like", "himself", "herself",
)  # fmt: skip
_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_PUNCT = ".,;:!?'\"-()"


def tiny_tokenizer(words: Sequence[str] = TOY_WORDS) -> PreTrainedTokenizerFast:
    """Lower-cased word-level tokenizer over ``words`` that falls back to characters.

    A WordPiece model whose vocabulary holds the words, single characters, ``##``-characters
    and punctuation: known words are one token, any other ASCII word is spelled out, so
    arbitrary English sentences tokenize without <unk>. Specials: <pad>, <unk>, <bos>, <eos>.
    """
    vocab = {w: i for i, w in enumerate(SPECIALS)}
    for w in (*words, *_CHARS, *(f"##{c}" for c in _CHARS), *_PUNCT):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="<unk>", max_input_chars_per_word=50))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()  # whitespace and punctuation
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>"
    )


def tiny_config(arch: str, vocab_size: int, n_layer: int = 2, hidden: int = 32):
    """A transformers config for a tiny model of ``arch`` (gpt2 | gpt_neox | llama)."""
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig

    common = {"vocab_size": vocab_size, "bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    if arch == "gpt2":
        return GPT2Config(n_embd=hidden, n_layer=n_layer, n_head=2, n_positions=64, **common)
    if arch == "gpt_neox":
        return GPTNeoXConfig(
            hidden_size=hidden,
            num_hidden_layers=n_layer,
            num_attention_heads=2,
            intermediate_size=2 * hidden,
            max_position_embeddings=64,
            tie_word_embeddings=False,
            **common,
        )
    if arch == "llama":
        return LlamaConfig(
            hidden_size=hidden,
            num_hidden_layers=n_layer,
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=2 * hidden,
            max_position_embeddings=64,
            tie_word_embeddings=True,
            **common,
        )
    raise ValueError(f"unknown tiny architecture '{arch}'; use one of {', '.join(ARCHS)}")


def wrap_loaded(model: torch.nn.Module, tokenizer, name: str, seed: int = 0) -> LoadedModel:
    """Eval mode, grads off, fingerprinted: what ``models.load_model`` hands out."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        spec=ModelSpec(name_or_path=name, step0=True, seed=seed, device="cpu", dtype="float32"),
        fingerprint=weight_fingerprint(model),
        device=torch.device("cpu"),
        dtype=torch.float32,
    )


def tiny_loaded_model(arch: str, seed: int = 0, n_layer: int = 2, hidden: int = 32) -> LoadedModel:
    """A seeded random-init tiny model of ``arch`` with :func:`tiny_tokenizer`."""
    from transformers import AutoModelForCausalLM

    tok = tiny_tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tok), n_layer, hidden), dtype=torch.float32)
    return wrap_loaded(model, tok, f"tiny-{arch}", seed)


def train_tiny(
    loaded: LoadedModel, sentences: Sequence[str], steps: int = 300, lr: float = 3e-3, batch: int = 32, seed: int = 0
) -> LoadedModel:
    """Train on ``sentences`` (next-token loss, BOS prepended) and return a re-fingerprinted model."""
    tok, model = loaded.tokenizer, loaded.model
    ids = [[loaded.bos_id, *tok(s, add_special_tokens=False)["input_ids"]] for s in sentences]
    width = max(len(x) for x in ids)
    data = torch.zeros((len(ids), width), dtype=torch.long)
    labels = torch.full((len(ids), width), -100, dtype=torch.long)
    attn = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        data[i, : len(x)] = torch.tensor(x)
        labels[i, 1 : len(x)] = torch.tensor(x[1:])
        attn[i, : len(x)] = 1
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        sel = torch.randint(0, len(ids), (batch,), generator=gen)
        out = model(input_ids=data[sel], attention_mask=attn[sel], labels=labels[sel])
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    return wrap_loaded(model, tok, loaded.spec.name_or_path, loaded.spec.seed)

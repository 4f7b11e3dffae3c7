"""Transformer Playground's from-scratch transformers, in plain PyTorch.

No UI code lives here: this package imports neither streamlit, plotly nor bertviz.
"""

from .attention import AttentionTrace, MultiHeadAttention, attention
from .checkpoint import CheckpointError, CheckpointPeek, LoadedCheckpoint, load_checkpoint, peek, save_checkpoint
from .config import ConfigError, GPTConfig, TransformerConfig
from .device import default_device
from .embeddings import LearnedPositionalEmbedding, SinusoidalPositionalEncoding, TokenEmbedding, sinusoidal_table
from .gpt import GPT, GPTTrace
from .kv_cache import KVCache, ModelCache
from .layers import DecoderLayer, EncoderLayer, FeedForward
from .lens import logit_lens
from .masks import causal_mask, combine_masks, padding_mask
from .mla import LatentKV
from .norms import LayerNorm, RMSNorm
from .rope import apply_rope
from .trace import trace
from .transformer import Decoder, Encoder, Seq2SeqTrace, Transformer

__all__ = [
    "AttentionTrace", "CheckpointError", "CheckpointPeek", "ConfigError", "Decoder", "DecoderLayer", "Encoder",
    "EncoderLayer", "FeedForward", "GPT", "LatentKV", "GPTConfig", "GPTTrace", "KVCache", "LayerNorm", "LearnedPositionalEmbedding",
    "LoadedCheckpoint", "ModelCache", "MultiHeadAttention", "RMSNorm", "Seq2SeqTrace", "SinusoidalPositionalEncoding",
    "TokenEmbedding", "Transformer", "TransformerConfig", "apply_rope", "attention", "causal_mask", "combine_masks",
    "default_device", "load_checkpoint", "logit_lens", "padding_mask", "peek", "save_checkpoint", "sinusoidal_table", "trace",
]

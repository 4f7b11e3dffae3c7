"""The tour of pages, in order: the one list that app.py's navigation and the home page both read."""

from __future__ import annotations

from dataclasses import dataclass

HOME = "pages/home.py"


@dataclass(frozen=True)
class TourPage:
    path: str  # relative to the repository root, as st.Page and st.page_link take it
    title: str
    icon: str  # a Material icon name, drawn from Streamlit's own font (works offline)
    section: str
    what: str  # one line for the home page


TOUR: tuple[TourPage, ...] = (
    TourPage(HOME, "Home", ":material/home:", "Start", "what the app is, and the notation"),
    TourPage("pages/embeddings.py", "Tokens & embeddings", ":material/data_array:", "Look inside",
             "how text becomes token ids, and ids become vectors"),
    TourPage("pages/positional.py", "Positional encodings", ":material/timeline:", "Look inside",
             "how the model knows where each token is"),
    TourPage("pages/attention_steps.py", "Attention, step by step", ":material/calculate:", "Look inside",
             "one head, from X to the output, every matrix"),
    TourPage("pages/heatmaps.py", "Attention heatmaps", ":material/grid_view:", "Look inside",
             "all heads and layers at once, plus bertviz views"),
    TourPage("pages/logit_lens.py", "Logit lens", ":material/layers:", "Look inside",
             "what the model would predict if it stopped after each layer"),
    TourPage("pages/heads_off.py", "What if: heads off", ":material/toggle_off:", "Experiment",
             "switch attention heads off; find the heads that matter"),
    TourPage("pages/hide_token.py", "What if: hide a token", ":material/visibility_off:", "Experiment",
             "mask an input token as a key: which outputs change"),
    TourPage("pages/compare_attention.py", "MHA vs GQA vs MQA", ":material/compare_arrows:", "Go further",
             "fewer key/value heads: what changes, what it saves"),
    TourPage("pages/kv_cache.py", "KV cache and generation", ":material/memory:", "Go further",
             "how generation reuses keys and values"),
    TourPage("pages/train.py", "Train", ":material/model_training:", "Go further",
             "train your own small model and open it here"),
    TourPage("pages/my_models.py", "Your models", ":material/folder_open:", "Go further",
             "upload, download and check your own models"),
    TourPage("pages/lessons.py", "Lessons", ":material/school:", "Learn",
             "questions about the model to answer and check, with a report for your teacher"),
)


def sections() -> dict[str, list[TourPage]]:
    """The tour's pages grouped by section, sections in tour order."""
    grouped: dict[str, list[TourPage]] = {}
    for page in TOUR:
        grouped.setdefault(page.section, []).append(page)
    return grouped

"""What if: heads off. Switch attention heads off and compare with the intact model; find the heads that matter."""

import streamlit as st

from app_lib.head_grid import head_grid
from app_lib.state import Selection, current_selection
from app_lib.tracing import ablation, accuracy, importance
from app_lib.ui import chart, intro, page_fragment, traced_input
from explain.inputs import code_span
from viz.figures_experiments import plot_accuracy_by_position, plot_importance, plot_next_token_probabilities

IMPORTANCE_KEY = "_tp_show_importance"

selection = current_selection()
intro(
    "What if: heads off",
    "Tick a head to switch it off: its output is set to zero before W_O mixes the heads, exactly as if its "
    "columns of W_O were zero. The page shows, next to the intact model, what the model writes for your input, "
    "the probabilities of its first token and, for the task models, the accuracy at each position on a few "
    "hundred fresh sequences. The address bar keeps your choice: copy it to share \"layer 1 head 2 off\".",
    r"\mathrm{MultiHead}(X) = \left[\, m_0\,\mathrm{head}_0 \;\|\; \dots \;\|\; m_{H-1}\,\mathrm{head}_{H-1} \right] W_O,"
    r"\quad m_h \in \{0, 1\}",
)
prepared = traced_input(selection)


def _show_importance(name: str) -> None:
    st.session_state[IMPORTANCE_KEY] = name


@page_fragment("heads_off")
def heads_off(selection: Selection) -> None:
    """The grid and everything it changes: a tick reruns only this (app_lib.ui.page_fragment)."""
    name, text = selection.entry.name, selection.text
    choice = head_grid(selection.checkpoint)
    st.caption(f"Now: {choice.summary}.")
    if choice.all_off:
        st.warning("Every head is off: attention passes nothing between tokens, so each position sees only "
                   "its own token (and its position). Whatever the model still gets right, it gets without "
                   "looking at any other token.")
    result = ablation(name, text, choice.off)
    if result.output_intact is not None:
        left, right = st.columns(2)
        left.markdown(f"**Intact model**, {result.output_label}: {code_span(result.output_intact)}")
        right.markdown(f"**Heads off**, {result.output_label}: {code_span(result.output_ablated)}"
                       + ("" if result.output_changed else " (the same)"))
    if result.probabilities:
        chart(plot_next_token_probabilities(result, f"The first token it writes, after reading "
                                                    f"{result.next_token_context}"), "heads_off_next_token")
    before, after = accuracy(name, ()), accuracy(name, choice.off)
    if before is None:
        st.info("This model's task has no accuracy to measure on fresh data (a language model): compare the "
                "outputs and probabilities above.")
    else:
        chart(plot_accuracy_by_position(before, after, f"Accuracy by position on fresh data: "
                                                       f"{after.headline_name} {before.headline:.1%} → "
                                                       f"{after.headline:.1%}"), "heads_off_accuracy")
        st.caption(before.note)

    st.subheader("Find the important heads")
    st.markdown("Switch each head off alone, then each layer's heads all together, and measure the accuracy drop. "
                "Both matter: heads that do the same work cover for each other, so one head off can cost "
                "nothing while the whole layer off costs everything.")
    st.button("Find the important heads", key="find_heads", on_click=_show_importance, args=(name,),
              disabled=before is None)
    if st.session_state.get(IMPORTANCE_KEY) == name and before is not None:
        found = importance(name)
        chart(plot_importance(found, f"Drop in {found.metric} with one head off, and with a whole layer off"),
              "heads_off_importance")
        for line in found.findings():
            st.markdown(f"- {line}")


heads_off(selection)

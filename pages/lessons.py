"""Lessons: a question about the model on screen, an answer to check, and the model's own numbers as the reason."""

import streamlit as st

from app_lib.lessons_view import lesson_section, pick_lesson, progress_section, teacher_toggle
from app_lib.state import current_selection
from app_lib.ui import intro

selection = current_selection()
intro(
    "Lessons",
    "Each lesson asks one question about the model and the input in the sidebar. Answer it and press **Check**: "
    "the right answer is worked out from the model itself, so a different model or input changes it. A wrong "
    "answer gets a hint; the answer is shown after the second wrong try, or when you ask. Then the model's own "
    "numbers show why, with a link to the page where you can look further.",
)
lesson = pick_lesson()
teacher = teacher_toggle()
st.header(lesson.title)
lesson_section(lesson, selection, teacher)
st.divider()
progress_section()

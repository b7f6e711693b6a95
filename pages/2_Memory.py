"""Memory: what the agent remembers, how a question finds it, and how to save, move or wipe it."""

import re
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui
from lab.embedding_map import project_2d
from lab.errors import LabError
from lab.explorer import explore
from lab.memory import Usage, answer_after_edit, answer_disagrees
from lab.pinned import budget_tokens, note_tokens
from lab.plural import plural

MAP_LIMIT = 5000  # memories drawn on the map (plus any retrieved); more makes the chart sluggish

st.set_page_config(page_title="Memory · Memory vs Learning Lab", layout="wide")
st.title("Memory")
st.caption("Notes kept outside the model and found again by meaning. Storing one takes milliseconds; "
           "the model's weights never change.")
key = ui.keys("memory")
lab = ui.session()
# Drawn here as on every page: in a locked class lab, a wrong unlock key or settings edited in the
# address change nothing, and this one line says so (the page was once silent about it).
settings = ui.link_settings()
store = lab.memory


def done(message: str, **reset) -> None:
    """Redraw the page with the change made, then show `message`; `reset` sets widgets before they are drawn."""
    st.session_state[key("notice")] = message
    st.session_state[key("reset")] = {key(name): value for name, value in reset.items()}
    st.rerun()


def hover(text: str) -> str:
    return textwrap.fill(text, 60).replace("\n", "<br>")


# Widget values can only be set before the widget is drawn: hence on the run after a change.
st.session_state.update(st.session_state.pop(key("reset"), {}))
if notice := st.session_state.pop(key("notice"), None):
    st.success(notice)

try:
    memories = store.list()
except LabError as error:
    ui.show_error(error)
    st.stop()
by_id = {m.id: m for m in memories}
usage = store.usage()
pinned = [m for m in memories if m.pinned]
st.caption(f"{plural(len(memories), 'memory')} in workspace `{lab.workspace.name}`")
with st.container(border=True):
    # The price of the always-in-context tier, in the model's own tokens.
    pinned_cost = lab.pinned_tokens()
    pin_column, cost_column, budget_column = st.columns(3)
    pin_column.metric("Pinned memories", len(pinned), help="Sent into every memory-arm prompt, whatever the question")
    cost_column.metric("Pinned tokens per answer", pinned_cost,
                       help="Every answer of the memory arms pays these prompt tokens, related or not: the "
                            "pinned notes and the notes heading they bring (lab/pinned.py). One pinned note costs "
                            "what its row in the table says; several share the heading, so a little less than "
                            "the sum.")
    budget_column.metric("Pinned budget", f"{pinned_cost} of {budget_tokens()}")
    st.caption("**Retrieved** memories go into a prompt only when they score at or above the threshold for the "
               "question; **pinned** ones always do, the way agent products keep rules and preferences in context.")

# The tabs (and the expander) keep their state under a key: without one, the browser went back to the
# first tab after a run that changed what the page draws (an upload, *Skip the duplicates*, Import).
if ui.teacher_mode():  # a class needs the table and the explorer; files and snapshots wait below
    table_tab, explorer_tab = st.tabs(["Memories", "Retrieval explorer"], key=key("tab"), on_change="rerun")
    files_tab = st.expander("Snapshots and files (advanced)", key=key("files_open"), on_change="rerun")
else:
    table_tab, explorer_tab, files_tab = st.tabs(["Memories", "Retrieval explorer", "Snapshots and files"],
                                                 key=key("tab"), on_change="rerun")

# ---- the memories: table, add, edit, delete, undo ------------------------------------------------
with table_tab:
    needle = st.text_input("Search the memories", key=key("table_search"), placeholder="words to look for").strip()
    shown = [m for m in memories
             if needle.lower() in " ".join(filter(None, (m.text, m.question, m.answer))).lower()]
    if needle:
        st.caption(f"“{needle}” is in {len(shown)} of {plural(len(memories), 'memory')}")
    orders = {"id": lambda m: m.id,
              "most sent into answers": lambda m: -usage.get(m.id, Usage()).retrievals,
              "last sent": lambda m: usage.get(m.id, Usage()).last_retrieved_at or "",
              "most decisive": lambda m: -usage.get(m.id, Usage()).decisive}
    order = st.selectbox("Sort by", list(orders), key=key("table_order"),
                         help="Usage signals: how often a memory went into an answer, and how often leaving it "
                              "out (Why? on the Playground) changed the answer. What proves useful here is what "
                              "is worth consolidating into the weights.")
    shown = sorted(shown, key=orders[order], reverse=order == "last sent")
    # A DataFrame with named columns, so an empty memory still shows its headers.
    st.dataframe(pd.DataFrame([(m.id, "pinned" if m.pinned else "retrieved", m.text, note_tokens(lab.engine, m.text),
                                usage.get(m.id, Usage()).retrievals, usage.get(m.id, Usage()).decisive,
                                (usage.get(m.id, Usage()).last_retrieved_at or "")[:19].replace("T", " "),
                                m.question, m.answer, m.source, m.updated_at[:19].replace("T", " "))
                               for m in shown],
                              columns=["id", "kind", "text", "prompt tokens", "sent", "decisive", "last sent", "question",
                                       "answer", "source", "updated"]),
                 hide_index=True, width="stretch",
                 column_config={"prompt tokens": st.column_config.NumberColumn(
                                    help="What the note adds to a prompt when it is sent alone, formatting "
                                         "included: the same figure as the Playground's and the Learning page's"),
                                "sent": st.column_config.NumberColumn(help="Answers it went into"),
                                "decisive": st.column_config.NumberColumn(
                                    help="Times that leaving it out (Why?) changed the answer")})
    if st.button("Undo the last change", key=key("undo"), help="Adds, edits, deletes, imports, restores and wipes"):
        try:
            undone = store.undo()
            done(undone[:1].upper() + undone[1:] + ".")
        except LabError as error:
            ui.show_error(error)

    # Memories consolidated into an adapter left the memory; they stay listed here, and can come back.
    retired = {r["id"]: r for r in store.retired()}
    if retired:
        with st.expander(f"Archived: {plural(len(retired), 'memory')} retired into adapters"):
            st.caption("An adapter was trained on these and answered them without the note, so they left the "
                       "memory and cost no prompt tokens. Restore one to have the memory arms retrieve it again; "
                       "the adapter keeps what it learned.")
            st.dataframe(pd.DataFrame([(r["id"], r["text"], r["adapter"], r["at"][:19].replace("T", " "))
                                       for r in retired.values()], columns=["id", "text", "adapter", "retired"]),
                         hide_index=True, width="stretch")
            if st.session_state.get(key("archive_pick")) not in retired:
                st.session_state.pop(key("archive_pick"), None)
            restoring = st.selectbox("Archived memory", list(retired), key=key("archive_pick"),
                                     format_func=lambda i: f"[{i}] {retired[i]['text'][:80]}")
            if st.button("Restore into the memory", key=key("archive_restore")):
                try:
                    back = store.unretire(restoring)
                    done(f"Restored [{back.id}] from the archive: the memory arms retrieve it again. "
                         "Undo archives it again.")
                except LabError as error:
                    ui.show_error(error)

    add_column, edit_column = st.columns(2)
    with add_column:
        st.subheader("Add a memory")
        text = st.text_area("Memory", key=key("add_text"), placeholder="The refund window at Acme Corp is 45 days.")
        question = st.text_input("The question it answers (optional)", key=key("add_question"))
        answer = st.text_input("The answer (optional)", key=key("add_answer"))
        pin_it = st.checkbox("Pin it: send it with every question", key=key("add_pin"),
                             help="For rules and preferences. Costs its tokens on every memory-arm answer.")
        if st.button("Add", key=key("add"), type="primary"):
            try:
                memory = lab.remember(text, question=question.strip() or None, answer=answer.strip() or None,
                                      pinned=pin_it)
                done(f"Remembered [{memory.id}]" + (", pinned." if memory.pinned else "."),
                     add_text="", add_question="", add_answer="", add_pin=False)
            except LabError as error:
                ui.show_error(error)

    with edit_column:
        st.subheader("Edit or delete")
        if not memories:
            st.caption("Nothing to edit yet.")
        else:
            # The picker is a new widget whenever the list changes (after an undo, a delete...), and the
            # fields are keyed by the memory's id and version, so a label and a text can never disagree.
            version = "-".join(f"{m.id}.{m.updated_at}" for m in memories)
            picker = key(f"edit_pick-{hash(version)}")
            previous = st.session_state.get(key("edit_id"))
            ids = list(by_id)
            chosen = by_id[st.selectbox("Which memory", ids, key=picker,
                                        index=ids.index(previous) if previous in by_id else 0,
                                        format_func=lambda i: f"[{i}] {by_id[i].text[:80]}")]
            st.session_state[key("edit_id")] = chosen.id
            field = f"{chosen.id}-{chosen.updated_at}"
            new_text = st.text_area("Text", chosen.text, key=key(f"edit_text-{field}"))
            new_question = st.text_input("Question (empty: none)", chosen.question or "",
                                         key=key(f"edit_question-{field}"))
            new_answer = st.text_input("Answer (empty: none)", chosen.answer or "", key=key(f"edit_answer-{field}"))
            # Training on memory learns the answer, not the text: an edit must not leave the old fact behind.
            # An answer nobody retyped follows the text (MemoryStore.update); say so, or warn where it cannot.
            typed_answer = new_answer.strip() != (chosen.answer or "")
            answer_then = (new_answer.strip() or None) if typed_answer else \
                answer_after_edit(chosen.text, chosen.answer, new_text.strip())
            if not typed_answer and answer_then != chosen.answer:
                st.info(f"Saving changes its answer to follow the new text: “{answer_then}”.",
                        icon=":material/sync:")
            elif answer_disagrees(new_text, answer_then):
                st.warning(f"The answer “{answer_then}” is not in the text. Training on memory learns the answer, "
                           "so make the two say the same.", icon=":material/warning:")
            save, pin, delete = st.columns(3)
            if pin.button("Unpin" if chosen.pinned else "Pin", key=key("edit_pin"),
                          help="Pinned: in every memory-arm prompt. Retrieved: only when it scores high enough."):
                try:
                    changed = lab.pin(chosen.id, not chosen.pinned)
                    done(f"{'Pinned' if changed.pinned else 'Unpinned'} [{chosen.id}]: pinned memories now cost "
                         f"{lab.pinned_tokens()} prompt tokens per answer. Undo reverses it.")
                except LabError as error:
                    ui.show_error(error)
            if save.button("Save changes", key=key("edit_save"), type="primary"):
                try:
                    updated = store.update(chosen.id, text=new_text, question=new_question.strip(),
                                           answer=new_answer.strip() if typed_answer else None)
                    done("Nothing changed." if updated == chosen else
                         f"Saved [{chosen.id}]." + (" New text, so it was embedded again."
                                                    if updated.text != chosen.text else "")
                         + (f" Its answer follows: “{updated.answer}”."
                            if not typed_answer and updated.answer != chosen.answer else ""))
                except LabError as error:
                    ui.show_error(error)
            if delete.button("Delete", key=key("edit_delete")):
                try:
                    store.delete(chosen.id)
                    done(f"Deleted [{chosen.id}]. Undo brings it back.")
                except LabError as error:
                    ui.show_error(error)

# ---- retrieval explorer: what a question finds, what passes, what the model is sent --------------
with explorer_tab:
    st.markdown("Ask as a student would. The memory arm fetches the nearest memories and sends at most **k** of "
                "them: those at or above the **threshold**, and a second one only when it scores close to the "
                "best. The rest never reach the model.")
    query = st.text_input("Question", key=key("explore_query"), placeholder="What is the refund window at Acme Corp?")
    left, right = st.columns(2)
    # They start where the link's settings (the Playground's) stand, so the explorer shows what the arm sends there.
    k = left.slider("Memories to fetch (k)", 1, 10, min(max(settings.k, 1), 10), key=key("explore_k"))
    threshold = right.slider("Similarity threshold", 0.0, 1.0, min(max(settings.threshold, 0.0), 1.0), 0.01,
                             key=key("explore_threshold"))

    # The agent's own choice (Agent.prepare, via lab/explorer.py): the page decides nothing about what is sent.
    seen = None
    if query.strip():
        try:
            seen = explore(lab.agent, query, k=k, min_score=threshold)
        except LabError as error:
            ui.show_error(error)
    query_vector = seen.vector if seen else None
    candidates = [c.hit for c in seen.candidates] if seen else []
    sent_ids = {c.hit.id for c in seen.candidates if c.sent} if seen else set()
    pinned_hits = seen.pinned if seen else []

    found_column, map_column = st.columns(2)
    with found_column:
        st.subheader("Candidates")
        if seen is None:
            st.info("Type a question to see which memories it finds.")
        elif not candidates and not pinned_hits:
            st.info("The memory is empty, so nothing is found: the memory arm sends the base prompt.")
        else:
            if pinned_hits:
                st.markdown(f":material/push_pin: **{len(pinned_hits)} pinned** go in whatever they score: "
                            + "; ".join(f"[{h.id}] {h.text[:60]} ({h.score:.2f})" for h in pinned_hits))
            st.markdown(f"**{len(sent_ids)} of {len(candidates)}** retrieved candidates go into the prompt "
                        f"(threshold {threshold:.2f}, k = {k}).")
            st.dataframe([{"rank": rank, "id": c.hit.id, "score": round(c.hit.score, 3),
                           "prompt": "✔ sent" if c.sent else f"✖ {c.why}", "text": c.hit.text}
                          for rank, c in enumerate(seen.candidates, 1)],
                         column_config={"text": st.column_config.TextColumn(width="large")},
                         hide_index=True, width="stretch")
            bars = go.Figure(go.Bar(
                x=[hit.score for hit in candidates], y=[f"[{hit.id}]" for hit in candidates], orientation="h",
                marker_color=["#2ca02c" if hit.id in sent_ids else "#bbbbbb" for hit in candidates],
                hovertext=[hover(hit.text) for hit in candidates], hoverinfo="text+x"))
            bars.add_vline(x=threshold, line_dash="dash", annotation_text="threshold", annotation_position="top")
            bars.update_layout(title="Cosine score of each candidate", xaxis_range=[min(0.0, *bars.data[0].x), 1],
                               yaxis_autorange="reversed", height=120 + 30 * len(candidates),
                               margin=dict(t=40, b=10))
            st.plotly_chart(bars, width="stretch", key=key("explore_scores"))

    with map_column:
        st.subheader("Map of the memory")
        if not memories:
            st.info("No memories yet: add some to see where they sit.")
        else:
            try:
                mapped = memories[:MAP_LIMIT]
                drawn = {m.id for m in mapped}
                mapped += [by_id[hit.id] for hit in candidates if hit.id not in drawn]
                vectors = store.vectors([m.id for m in mapped])
                points, query_point, explained = project_2d(vectors, extra=query_vector)
            except LabError as error:
                ui.show_error(error)
            else:
                score = {hit.id: hit.score for hit in candidates}
                always = {m.id for m in pinned}
                groups = [("other memories", "#9aa7b8", "circle", lambda i: i not in score and i not in always),
                          ("pinned (always sent)", "#9467bd", "diamond", lambda i: i in always),
                          ("left out", "#ff7f0e", "circle-open", lambda i: i in score and i not in sent_ids),
                          ("sent", "#2ca02c", "circle", lambda i: i in sent_ids)]
                chart = go.Figure()
                for name, colour, symbol, belongs in groups:
                    rows = [n for n, m in enumerate(mapped) if belongs(m.id)]
                    if not rows:
                        continue
                    chart.add_scatter(
                        x=points[rows, 0], y=points[rows, 1], mode="markers", name=name,
                        marker=dict(color=colour, symbol=symbol, size=9 if name == "other memories" else 13),
                        hovertext=[f"[{mapped[n].id}]" + (f" score {score[mapped[n].id]:.3f}"
                                                          if mapped[n].id in score else "")
                                   + f"<br>{hover(mapped[n].text)}" for n in rows], hoverinfo="text")
                if query_vector is not None:
                    chart.add_scatter(x=query_point[:, 0], y=query_point[:, 1], mode="markers", name="your question",
                                      marker=dict(color="#d62728", symbol="star", size=18),
                                      hovertext=[hover(query)], hoverinfo="text")
                def axis_title(n: int) -> str:
                    # With one or two memories there is no spread to share out: a percentage would mislead.
                    if len(mapped) + (query_vector is not None) < 3:
                        return f"axis {n + 1}"
                    return f"axis {n + 1} · {explained[n]:.0%} of the spread"

                chart.update_layout(
                    title=f"Memory embeddings, {vectors.shape[1]} dimensions flattened to 2 (PCA)", height=460,
                    xaxis=dict(title=axis_title(0), showticklabels=False),
                    yaxis=dict(title=axis_title(1), showticklabels=False,
                               scaleanchor="x"),  # equal scales: distances on the map are comparable
                    legend=dict(orientation="h"), margin=dict(t=40, b=10))
                st.plotly_chart(chart, width="stretch", key=key("memory_map"))
                st.caption("Far apart on the map means far apart in meaning; close on the map may not mean close "
                           "(the dropped dimensions can separate them). The scores on the left are the real test."
                           + (f" Showing {len(mapped)} of {len(memories)} memories." if len(memories) > MAP_LIMIT
                              else ""))

    if seen is not None:
        st.subheader("What the memory arm would send")
        injected_column, tokens_column, extra_column = st.columns(3)
        injected_column.metric("Memories injected", len(seen.prepared.hits),
                               help=f"{len(pinned_hits)} pinned, {len(seen.sent)} retrieved")
        tokens_column.metric("Prompt tokens", seen.prompt_tokens)
        extra_column.metric("Extra tokens for memories", seen.extra_tokens,
                            help="Compared with the base arm's prompt for the same question. "
                                 f"The pinned memories' {pinned_cost} are paid on every question.")
        st.code(seen.prompt, language=None)

# ---- snapshots, export and import ----------------------------------------------------------------
with files_tab:
    snapshot_column, file_column = st.columns(2)
    with snapshot_column:
        st.subheader("Snapshots")
        st.caption("A saved copy of every memory in this workspace. Restoring replaces the current memories "
                   "(undo reverses it); saving under an existing name replaces that snapshot.")
        name = st.text_input("Snapshot name", key=key("snapshot_name"), placeholder="before-the-wipe")
        if st.button("Save snapshot", key=key("snapshot_save")):
            try:
                saved = store.snapshot(name.strip())
                done(f"Saved snapshot '{name.strip()}' with {plural(saved, 'memory')}.", snapshot_name="")
            except LabError as error:
                ui.show_error(error)
        snapshots = store.snapshots()
        if not snapshots:
            st.caption("No snapshots yet.")
        else:
            st.dataframe([{"name": s["name"], "memories": s["count"], "saved": s["created_at"][:19].replace("T", " ")}
                          for s in snapshots], hide_index=True, width="stretch")
            names = [s["name"] for s in snapshots]
            if st.session_state.get(key("snapshot_pick")) not in names:
                st.session_state.pop(key("snapshot_pick"), None)
            picked = st.selectbox("Snapshot", names, key=key("snapshot_pick"))
            restore, remove = st.columns(2)
            if restore.button("Restore", key=key("snapshot_restore")):
                try:
                    done(f"Restored '{picked}': {plural(store.restore(picked), 'memory')}. Undo brings back the ones before.")
                except LabError as error:
                    ui.show_error(error)
            if remove.button("Delete snapshot", key=key("snapshot_delete")):
                try:
                    store.delete_snapshot(picked)
                    done(f"Deleted snapshot '{picked}'. The current memories are untouched.")
                except LabError as error:
                    ui.show_error(error)

    with file_column:
        st.subheader("Export and import")
        try:
            with tempfile.TemporaryDirectory() as folder:
                store.export(Path(folder) / "memories.json")
                exported = (Path(folder) / "memories.json").read_bytes()
            st.download_button("Download the memories (JSON)", exported, key=key("export"), on_click="ignore",
                               file_name=f"memories-{lab.workspace.name}.json", mime="application/json")
        except LabError as error:
            ui.show_error(error)
        upload = st.file_uploader("A memory export (.json)", type=["json"], key=key("import_file"))
        st.caption("Imported memories are added beside the current ones, with new ids; undo removes them again.")
        if upload is not None:
            # import_ reads a path: copy the upload to a temporary file under a safe version of its name.
            safe_name = re.sub(r"[^\w.-]", "_", Path(upload.name).name).lstrip(".") or "upload.json"
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / safe_name
                path.write_bytes(upload.getvalue())
                try:
                    duplicates = store.duplicates_in(path)
                    skip = False
                    if duplicates:
                        st.warning(f"{duplicates} of the file's memories {'is' if duplicates == 1 else 'are'} already in this "
                                   "memory, word for word.")
                        skip = st.checkbox("Skip the duplicates", value=True, key=key("import_skip"))
                    if st.button("Import", key=key("import")):
                        added = store.import_(path, skip_duplicates=skip)
                        done(f"Imported {plural(added, 'memory')} from {upload.name}"
                             + (f" ({plural(duplicates, 'duplicate')} skipped)." if skip and duplicates else "."))
                except LabError as error:
                    # The message names the temporary copy; the student knows the file by its own name.
                    ui.show_error(LabError(str(error).replace(str(path), upload.name)))

# ---- wipe: outside the tabs, always in view (the wipe is the lab's central experiment) -----------
st.divider()
st.subheader("Wipe")
st.caption("Erases every memory at once. The memory arm is back to the base model's answers; adapters "
           "(what was learned) are untouched. Undo, or a snapshot taken first, brings the memories back.")
sure = st.checkbox("I understand: the wipe erases every memory", key=key("wipe_confirm"))
if st.button("Wipe memory", type="primary", disabled=not sure, key=key("wipe")):
    try:
        done(f"Wiped {plural(store.wipe(), 'memory')}. Undo brings them back.", wipe_confirm=False)
    except LabError as error:
        ui.show_error(error)

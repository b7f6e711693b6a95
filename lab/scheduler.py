"""One queue for the shared model: every session's requests, served together in rounds.

In class, thirty students press Ask within the same minute. Behind a plain lock each
generation ran alone while the rest waited (30 students: 32 s, p95 31 s), although the
decoder answers the same prompts as one batch in 8 s. Here every request joins one queue
and one worker thread serves them in batched rounds (lab/decoder.py: a reply is the same
whatever else shares its round, so batching other students' requests changes nothing).

- One adapter per round: llama.cpp applies a LoRA to the whole context. Requests are
  grouped by adapter (the base model is a group too), and the groups take turns round by
  round, so a class on the learned arm does not starve the base arm or the reverse.
- Within a group, tickets take turns: a ticket is one call, a lone question or an
  evaluation's eighty prompts. A round takes one request from each waiting ticket in turn
  until it is full, so a question asked during an evaluation joins the very next round
  instead of queueing behind the eighty.
- A round is capped (decoder.ROUND_CELLS cells, ROUND_SEQUENCES sequences), so it lasts a
  second or two: a request waits about one round per group ahead of it, never a whole
  evaluation. Calls of the running round's adapter that arrive while it runs join it
  between two steps, while it has room and no other adapter is waiting (a class's burst
  rarely arrives in the same millisecond), and each reply goes back the moment its own
  sequence ends, not when the round's longest does.
- Streaming: the worker hands each piece of text to the asker's own thread through the
  ticket, because a Streamlit page can only draw from the thread that runs it.

    scheduler = Scheduler(serve=engine._serve_round, cost=GreedyDecoder.round_cells, capacity=ROUND_CELLS)
    ticket = scheduler.submit(group, requests)
    replies = ticket.wait(on_text=..., on_wait=lambda place: print(place.describe()))
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

_POLL_S = 0.25  # how often a waiting asker re-reads its place in the queue


@dataclass(frozen=True)
class Place:
    """Where a waiting ticket stands: the rounds to be served before its own first round, the
    requests of older tickets still waiting or running, and the wait expected from recent rounds."""

    rounds: int
    ahead: int
    eta_s: float

    def describe(self) -> str:
        when = {0: "now", 1: "in the next round"}.get(self.rounds, f"after {self.rounds} rounds")
        eta = f"about {max(1, round(self.eta_s))} s" if self.eta_s > 0 else "in a moment"
        return (f"Waiting for the shared model: {self.ahead} request{'s' if self.ahead != 1 else ''} from other "
                f"sessions ahead of yours. Yours starts {when}, {eta}.")


class Ticket:
    """One call's requests, all for one group (adapter). Made by Scheduler.submit."""

    def __init__(self, scheduler: "Scheduler", group: Hashable, requests: Sequence):
        self._scheduler = scheduler
        self.group = group
        self.requests = list(requests)
        self.replies: list = [None] * len(self.requests)
        self.taken = 0  # requests handed to rounds so far, in order
        self.left = len(self.requests)  # requests not yet answered
        self.error: BaseException | None = None
        self.events: queue.SimpleQueue = queue.SimpleQueue()  # ("text", i, piece) | ("done",)
        self.submitted_at = time.monotonic()

    @property
    def started(self) -> bool:
        return self.taken > 0

    def wait(self, *, on_text: Callable[[int, str], None] | None = None,
             on_wait: Callable[[Place], None] | None = None) -> list:
        """The replies, in order, once all are in. Runs `on_text(i, piece)` and `on_wait(place)`
        in the caller's thread. If the caller is interrupted (a page's rerun), requests not yet
        started are withdrawn: nobody would read them."""
        told = None
        finished = False
        try:
            while True:
                try:
                    event = self.events.get(timeout=_POLL_S)
                except queue.Empty:
                    event = None
                if event is not None and event[0] == "done":
                    finished = True
                    break
                if event is not None and event[0] == "text" and on_text is not None:
                    on_text(event[1], event[2])
                if on_wait is not None and not self.started:
                    place = self._scheduler.place(self)
                    if place is not None and place != told:
                        told = place
                        on_wait(place)
        finally:
            if not finished:
                self._scheduler.withdraw(self)
        if self.error is not None:
            raise self.error
        return self.replies


class Scheduler:
    """A queue of tickets served by one worker thread, in rounds of one group each.

    `serve(group, requests, admit=, on_reply=) -> replies` runs one round on the model
    (adapter switching inside); it may call `admit(cells, slots)` between steps for more
    requests of the group, and `on_reply(k, reply)` as each finishes. `cost(requests)` is
    what requests occupy in a round, at most `capacity`. `stream(request, push)` attaches
    a per-request text callback."""

    def __init__(self, serve: Callable[..., list], cost: Callable[[list], int], capacity: int,
                 stream: Callable[[object, Callable[[str], None]], object] | None = None,
                 max_sequences: int = 63, model_lock: threading.Lock | None = None):
        self._serve = serve
        # Held around each round: whatever else uses the model (scoring) goes between rounds.
        self._model_lock = model_lock or threading.Lock()
        self._cost = cost  # what requests occupy in a round (decoder cells)
        self._capacity = capacity
        self._stream = stream
        self._max_sequences = max_sequences
        self._cond = threading.Condition()
        self._tickets: list[Ticket] = []  # waiting or partly served, in submission order
        self._served_at: dict = {}  # group -> the round number it was last served in
        self._running: list[tuple[Ticket, int]] | None = None  # the round in progress, in joining order
        self._delivered: set[int] = set()  # positions in _running whose reply is in
        self._round_s = 1.0  # recent seconds per round (an exponential average)
        self._round_size = 8.0  # recent requests per round (likewise)
        self._worker: threading.Thread | None = None
        self.rounds = 0  # served so far (bench/ and tests read it)
        self.largest_round = 0
        self.joined_late = 0  # requests that joined a round already running
        self._last_active = float("-inf")  # monotonic time the last round ended

    # ---- the askers' side ----------------------------------------------------------------

    def submit(self, group: Hashable, requests: Sequence) -> Ticket:
        ticket = Ticket(self, group, requests)
        if not ticket.requests:
            ticket.events.put(("done",))
            return ticket
        if self._stream is not None:
            for i, request in enumerate(ticket.requests):
                if getattr(request, "on_text", None) is not None:
                    self._stream(request, lambda piece, i=i: ticket.events.put(("text", i, piece)))
        with self._cond:
            self._tickets.append(ticket)
            self._start_worker()
            self._cond.notify()
        return ticket

    def withdraw(self, ticket: Ticket) -> None:
        """Drop what a ticket has not started; what is running finishes (and is cached)."""
        with self._cond:
            ticket.taken = len(ticket.requests)
            if ticket.left == 0 or not self._in_round(ticket):
                self._forget(ticket)

    def active_within(self, seconds: float) -> bool:
        """Whether a request was waiting or being served in the last `seconds`."""
        return self._running is not None or bool(self._tickets) or time.monotonic() - self._last_active < seconds

    @property
    def pending(self) -> int:
        """Requests waiting for a round."""
        with self._cond:
            return sum(len(t.requests) - t.taken for t in self._tickets)

    @property
    def busy(self) -> bool:
        return self._running is not None

    def place(self, ticket: Ticket) -> Place | None:
        """Where a ticket that has not started stands (None once it has)."""
        with self._cond:
            if ticket.started or ticket not in self._tickets:
                return None
            ahead = sum(len(t.requests) - t.taken for t in self._tickets
                        if t.submitted_at < ticket.submitted_at and t is not ticket)
            running = len(self._running) if self._running else 0
            # Rounds before this ticket's: the one running now, one per group ahead of its own
            # in the rotation, and, in its own group, one per round's worth of older tickets.
            turns = self._group_order()
            groups_ahead = turns.index(ticket.group) if ticket.group in turns else len(turns)
            same_group_ahead = sum(1 for t in self._tickets
                                   if t.group == ticket.group and t.submitted_at < ticket.submitted_at)
            rounds = (1 if running else 0) + groups_ahead + int(same_group_ahead // max(1.0, self._round_size))
            eta = self._round_s * (rounds - 0.5 if running else rounds)
            return Place(rounds=rounds, ahead=ahead + running, eta_s=max(0.0, eta))

    # ---- the worker ----------------------------------------------------------------------

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="lab-model-scheduler", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._has_work():
                    self._cond.wait()
            with self._model_lock:
                with self._cond:
                    if not self._has_work():  # withdrawn meanwhile
                        continue
                    group = self._next_group()
                    self._running = self._take(group, self._capacity, self._max_sequences, first_always=True)
                    self._delivered = set()
                    requests = [t.requests[i] for t, i in self._running]
                started = time.perf_counter()
                error: BaseException | None = None
                try:
                    replies = self._serve(group, requests, admit=lambda cells, slots: self._admit(group, cells, slots),
                                          on_reply=self._deliver)
                    for k, reply in enumerate(replies):  # whatever was not delivered as it finished
                        self._deliver(k, reply)
                except BaseException as exc:  # delivered to the askers, one line each
                    error = exc
                seconds = time.perf_counter() - started
            with self._cond:
                chosen, self._running = self._running, None
                self._last_active = time.monotonic()
                self.rounds += 1
                self.largest_round = max(self.largest_round, len(chosen))
                self._round_s = 0.7 * self._round_s + 0.3 * seconds
                self._round_size = 0.7 * self._round_size + 0.3 * len(chosen)
                for k, (ticket, i) in enumerate(chosen):
                    if error is not None and k not in self._delivered and ticket.error is None:
                        ticket.error = error
                        ticket.left = 0
                        ticket.taken = len(ticket.requests)
                        ticket.events.put(("done",))
                    if ticket.left == 0 or ticket.taken == len(ticket.requests) and not self._waiting_for(ticket):
                        self._forget(ticket)  # answered, failed, or withdrawn while its last requests ran

    def _admit(self, group, cells: int, slots: int) -> list:
        """Requests of the running round's group that may join it now, within `cells` and
        `slots`. None while another group waits: the round should end so that group gets its turn."""
        with self._cond:
            if any(t.group != group and len(t.requests) > t.taken for t in self._tickets):
                return []
            # Only calls with nothing in the round yet: a newcomer's prompt shares no cells with
            # the round's trie, so an evaluation's own later prompts go faster in a round of
            # their own (60 acme prompts: 12.7 s so, 16.3 s joining as cells freed).
            present = {id(t) for t, _ in self._running}
            joined = self._take(group, cells, slots, first_always=False, skip=present)
            self._running.extend(joined)
            self.joined_late += len(joined)
            return [t.requests[i] for t, i in joined]

    def _deliver(self, k: int, reply) -> None:
        """A reply, the moment its sequence finishes: a short answer need not wait for the
        longest one in its round."""
        with self._cond:
            if k in self._delivered:
                return
            self._delivered.add(k)
            ticket, i = self._running[k]
            if ticket.error is not None:
                return
            ticket.replies[i] = reply
            ticket.left -= 1
            if ticket.left == 0:
                ticket.events.put(("done",))

    def _has_work(self) -> bool:
        return any(len(t.requests) > t.taken for t in self._tickets)

    def _group_order(self) -> list:
        """The groups with requests waiting, in the order of their next turn: the one served
        longest ago first (a group never served yet before any), then by arrival."""
        groups: list = []
        for ticket in self._tickets:
            if ticket.group not in groups and len(ticket.requests) > ticket.taken:
                groups.append(ticket.group)
        return sorted(groups, key=lambda g: self._served_at.get(g, -1))  # stable: arrival breaks ties

    def _next_group(self):
        group = self._group_order()[0]
        self._served_at[group] = self.rounds
        return group

    def _take(self, group, budget: int, slots: int, *, first_always: bool,
              skip: set[int] = frozenset()) -> list[tuple[Ticket, int]]:
        """One request from each of the group's tickets in turn (oldest first) while they fit
        in `budget` cells and `slots` sequences; a new round's first request always goes,
        even one too long to share."""
        tickets = [t for t in self._tickets if t.group == group and id(t) not in skip]
        chosen: list[tuple[Ticket, int]] = []
        taking = True
        while taking and len(chosen) < slots:
            taking = False
            for ticket in tickets:
                if ticket.taken >= len(ticket.requests) or len(chosen) >= slots:
                    continue
                candidate = ticket.requests[ticket.taken]
                if (chosen or not first_always) and \
                        self._cost([t.requests[i] for t, i in chosen] + [candidate]) > budget:
                    continue
                chosen.append((ticket, ticket.taken))
                ticket.taken += 1
                taking = True
        return chosen

    def _in_round(self, ticket: Ticket) -> bool:
        return bool(self._running) and any(t is ticket for t, _ in self._running)

    def _waiting_for(self, ticket: Ticket) -> bool:
        return ticket.left > 0 and self._in_round(ticket)

    def _forget(self, ticket: Ticket) -> None:
        if ticket in self._tickets:
            self._tickets.remove(ticket)

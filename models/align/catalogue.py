"""The item catalogue as answers: each title's tokens, the duplicate-title rule, and a prefix trie.

Every catalogue item is an answer the LLM can produce: its title's tokens then end-of-sequence (exactly the
answer the shared scorer reads, models.llmrec.layout.Codec.answer_ids). Items with the same answer tokens
(duplicate titles) form one **group**: the LLM cannot tell them apart, so a group stands for all of its items,
ordered by the tie rule -- more training interactions first, then the smaller item id -- and a retrieved group
fills consecutive ranks with its unmasked items in that order. Retrieval therefore always returns item ids.

:meth:`Catalogue.allowed` walks the prefix trie over the groups' token sequences: after a generated prefix, the
tokens that continue some group with at least one item the user may still get (not masked); an empty
catalogue branch is never offered, so constrained decoding can only end on a real, unmasked title.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Catalogue:
    item_ids: list[str]  # catalogue order = tie order within a group
    titles: list[str]
    groups: list[tuple[int, ...]]  # group g's answer tokens
    members: list[list[int]]  # group g's item positions, tie order
    group_of: list[int]  # item position -> group
    index: dict[str, int] = field(default_factory=dict)  # item id -> position
    trie: dict[tuple[int, ...], dict[int, list[int]]] = field(default_factory=dict)  # prefix -> token -> groups

    @classmethod
    def build(cls, codec, item_ids: Sequence[str], titles: Sequence[str], popularity: Sequence[int]) -> Catalogue:
        """Items in tie order (popularity descending, then id); one group per distinct answer."""
        if not (len(item_ids) == len(titles) == len(popularity)) or not item_ids:
            raise ValueError("a catalogue needs one title and one popularity per item, and at least one item")
        if len(set(item_ids)) != len(item_ids) or any(not t for t in titles):
            raise ValueError("catalogue item ids must be unique and every title non-empty")
        order = sorted(range(len(item_ids)), key=lambda k: (-int(popularity[k]), str(item_ids[k])))
        ids, names = [str(item_ids[k]) for k in order], [titles[k] for k in order]
        groups, members, group_of, seen = [], [], [], {}
        for pos, title in enumerate(names):
            answer = tuple(codec.answer_ids(title))
            g = seen.setdefault(answer, len(groups))
            if g == len(groups):
                groups.append(answer)
                members.append([])
            members[g].append(pos)
            group_of.append(g)
        trie: dict[tuple[int, ...], dict[int, list[int]]] = {}
        for g, answer in enumerate(groups):
            for k, token in enumerate(answer):
                trie.setdefault(answer[:k], {}).setdefault(token, []).append(g)
        return cls(item_ids=ids, titles=names, groups=groups, members=members, group_of=group_of,
                   index={i: p for p, i in enumerate(ids)}, trie=trie)

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def max_answer_len(self) -> int:
        return max(len(g) for g in self.groups)

    def live_groups(self, masked: set[int]) -> set[int] | None:
        """Groups with at least one unmasked item; ``None`` = all (nothing masked)."""
        if not masked:
            return None
        return {g for g, items in enumerate(self.members) if any(p not in masked for p in items)}

    def allowed(self, prefix: Sequence[int], live: set[int] | None, eos_id: int) -> list[int]:
        """Tokens that extend ``prefix`` towards a live group (end-of-sequence once a group is complete)."""
        nexts = self.trie.get(tuple(prefix))
        if not nexts:
            return [eos_id]  # a finished answer (or off the trie): only stopping is allowed
        out = [t for t, gs in nexts.items() if live is None or any(g in live for g in gs)]
        return out or [eos_id]

    def group_of_answer(self, tokens: Sequence[int]) -> int | None:
        """The group whose answer is exactly ``tokens`` (ending with end-of-sequence), or None."""
        tokens = tuple(tokens)
        if not tokens:
            return None
        nexts = self.trie.get(tokens[:-1], {})
        for g in nexts.get(tokens[-1], []):
            if self.groups[g] == tokens:
                return g
        return None

    def expand(self, ranked_groups: Sequence[int], masked: set[int], k: int) -> list[int]:
        """Item positions of the best ``k``: each group's unmasked items in tie order, groups in rank order."""
        out: list[int] = []
        for g in ranked_groups:
            out += [p for p in self.members[g] if p not in masked]
            if len(out) >= k:
                break
        return out[:k]

"""``KnowledgeBaseRetriever``: the ``assistant.core.retrieval.Retriever`` over the Chroma knowledge base.

search: embed the query -> fetch ``fetch_factor * k`` nearest chunks (with their embeddings, optionally filtered
by condition id or ontology category) -> hybrid (default): add the BM25 top ``fetch_factor * k`` over the same
chunks and rank the union by ``dense_weight * cosine + (1 - dense_weight) * BM25`` (both min-max normalised)
-> optional cross-encoder re-ranking -> MMR (maximal marginal relevance)
to pick ``k`` chunks that are relevant *and* not near-duplicates -> ``Passage``s with stable chunk ids.

Hybrid is the default because it measurably helps on the query set (recall@5 and MRR in docs/knowledge-base.md):
clinical vignettes are full of exact terms ("silvery", "umbilicated", "burrows") that a small embedder blurs.
The BM25 index is written with each store generation and memory-mapped (``rag.lexical``): a search reads the
postings of its terms and fetches from Chroma only the few keyword hits the dense top-n lacks, at any store size.

There is no default re-ranker: no cross-encoder ships with dermassist and nothing is downloaded. Pass any
``sentence_transformers.CrossEncoder`` name or local folder as ``reranker=`` to enable one.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from assistant.core.case import Case, Modality
from assistant.core.errors import RetrievalError
from assistant.core.ontology import default_ontology
from assistant.core.retrieval import Passage
from assistant.core.skintone import is_darker_skin
from rag.embeddings import Embedder
from rag.store import KnowledgeBaseStore, open_or_build

DEFAULT_K = 5
MAX_K = 50
DEFAULT_FETCH_FACTOR = 4
MIN_CANDIDATES = 20
DEFAULT_MMR_LAMBDA = 0.9
DEFAULT_DENSE_WEIGHT = 0.5
MAX_QUERY_CHARS = 4000


FALLBACK_QUERIES = {
    Modality.clinical: "Skin lesion photograph: describing morphology, warning signs of skin cancer (ABCDE, "
                       "ugly duckling) and when to refer urgently.",
    Modality.dermoscopy: "Dermoscopy of a skin lesion: dermoscopy checklists for melanoma, warning signs and "
                         "referral criteria.",
    Modality.histopathology: "Skin biopsy histopathology: skin cancer types and referral and management criteria.",
}


# How each answered-yes red-flag question reads in a retrieval query (ClinicalContext field -> phrase).
RED_FLAG_PHRASES = {
    "fever": "with fever",
    "mucosal_involvement": "with mouth, eye or genital sores",
    "immunosuppressed": "in an immunosuppressed patient",
    "non_blanching_rash": "non-blanching petechial or purpuric rash",
    "rapid_spread": "spreading rapidly",
    "new_medication_last_8_weeks": "after starting a new drug",
    "pregnant": "in pregnancy",
    "systemically_unwell": "systemically unwell",
}
DARKER_SKIN_QUERY = "On darker skin: how it looks on brown and black skin."
DARKER_SKIN_SECTION = "#on-darker-skin"


def case_query(case: Case) -> str:
    """A natural-language query from the case: symptoms, site, duration, history, question, modality and the
    red-flag answers (``darker_skin_query`` adds the skin type).

    A case with no retrievable context still gets a query about its modality — how to describe the lesion, what
    the red flags are and when to refer — so every report is grounded in the cross-cutting guidance (ABCDE,
    dermoscopy checklists, referral criteria) rather than in nothing.
    """
    ctx = case.context
    symptoms = ctx.symptoms.present()
    lesion = f"skin lesion with {', '.join(symptoms)}" if symptoms else "skin lesion"
    parts = []
    if symptoms or ctx.body_site or ctx.duration:
        sentence = lesion + (f" on the {ctx.body_site}" if ctx.body_site else "")
        sentence += f" for {ctx.duration}" if ctx.duration else ""
        parts.append(sentence + ".")
    if ctx.history:
        parts.append(f"History: {ctx.history.rstrip('.')}.")
    if ctx.question:
        parts.append(ctx.question)
    modality = Modality(case.modality)
    if not parts:
        parts.append(FALLBACK_QUERIES[modality])
    elif modality != Modality.clinical:
        parts.append(f"({modality.value} image)")
    flags = [RED_FLAG_PHRASES[name] for name, value in ctx.emergency_answers() if value]
    if flags:
        parts.append(f"Red flags: {', '.join(flags)}.")
    return " ".join(parts)


def darker_skin_query(case: Case) -> str | None:
    """For Fitzpatrick V-VI or Monk 7-10: the case query asking how the problem looks on darker skin; else None."""
    ctx = case.context
    return f"{case_query(case)} {DARKER_SKIN_QUERY}" if is_darker_skin(ctx.fitzpatrick, ctx.monk) else None


def mmr(candidates: np.ndarray, relevance: np.ndarray, k: int, lam: float) -> list[int]:
    """Indices of ``k`` candidates chosen greedily by ``lam * relevance - (1 - lam) * max similarity to chosen``."""
    if len(candidates) == 0:
        return []
    sims = candidates @ candidates.T
    chosen: list[int] = [int(np.argmax(relevance))]
    while len(chosen) < min(k, len(candidates)):
        redundancy = sims[:, chosen].max(axis=1)
        scores = lam * relevance - (1 - lam) * redundancy
        scores[chosen] = -np.inf
        chosen.append(int(np.argmax(scores)))
    return chosen


def _check_k(k: int) -> int:
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RetrievalError(f"The number of passages k must be between 1 and {MAX_K}, got {k!r}.")
    return k


def check_search(
    query: str, k: int, condition: str | None = None, category: str | None = None
) -> tuple[str, int, str | None, str | None]:
    """Validated (query, k, condition id, category), condition synonyms mapped to ontology ids. Callers check
    before opening a store, so bad input is an error in well under a second."""
    query = (query or "").strip()
    if not query:
        raise RetrievalError("The search query is empty; type what you are looking for.")
    ontology = default_ontology()
    cid = condition.strip() if condition and condition.strip() else None
    cat = category.strip().lower() if category and category.strip() else None
    if cid:
        cid = ontology.normalize(cid)
        if not cid:
            raise RetrievalError(f"Unknown condition '{condition}'; use an id such as 'psoriasis'.")
    if cat:
        known = sorted({c.category.value for c in ontology.conditions})
        if cat not in known:
            raise RetrievalError(f"Unknown category '{category}'; choose from {', '.join(known)}.")
    return query, _check_k(k), cid, cat


class KnowledgeBaseRetriever:
    def __init__(
        self,
        store: KnowledgeBaseStore,
        *,
        k: int = DEFAULT_K,
        fetch_factor: int = DEFAULT_FETCH_FACTOR,
        mmr_lambda: float = DEFAULT_MMR_LAMBDA,
        reranker: str | None = None,
        hybrid: bool = True,
        dense_weight: float = DEFAULT_DENSE_WEIGHT,
    ):
        if not 0.0 <= mmr_lambda <= 1.0:
            raise RetrievalError(f"MMR lambda must be between 0 and 1, got {mmr_lambda}.")
        self.store = store
        self.k = _check_k(k)
        self.fetch_factor = max(1, fetch_factor)
        self.mmr_lambda = mmr_lambda
        self.reranker_name = reranker
        self.hybrid = hybrid
        self.dense_weight = dense_weight

    @property
    def version(self) -> str | None:
        return self.store.version

    @cached_property
    def _reranker(self):
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(self.reranker_name)
        except Exception as err:
            raise RetrievalError(
                f"Re-ranker '{self.reranker_name}' could not be loaded ({type(err).__name__}); give a local "
                "cross-encoder folder or a model already in the Hugging Face cache."
            ) from None

    def retrieve(self, case: Case, k: int | None = None) -> list[Passage]:
        """The case query's passages; for darker skin, up to a third of them are replaced by the "On darker skin"
        sections a skin-type query finds (signs look different on brown and black skin: violaceous rather than red,
        purpura best seen on palms and mucosa), so the model reads them for the conditions at hand."""
        k = _check_k(self.k if k is None else k)
        passages = self.search(case_query(case), k)
        dark_query = darker_skin_query(case)
        if dark_query is None:
            return passages
        have = {p.id for p in passages}
        docs = {p.id.split("#")[0] for p in passages}
        found = [p for p in self.search(dark_query, min(MAX_K, 2 * k))
                 if p.id.endswith(DARKER_SKIN_SECTION) and p.id not in have]
        # the darker-skin sections of the conditions already retrieved first, then the best of the others
        found.sort(key=lambda p: p.id.split("#")[0] not in docs)
        extra = found[:max(1, k // 3)]
        return passages[:k - len(extra)] + extra

    def search(
        self, query: str, k: int | None = None, *, condition: str | None = None, category: str | None = None
    ) -> list[Passage]:
        query, k, cid, cat = check_search(query, self.k if k is None else k, condition, category)
        self.store.refresh()
        q = self.store.embedder.embed([query[:MAX_QUERY_CHARS]])[0]
        n = max(self.fetch_factor * k, MIN_CANDIDATES)  # the pool (and so score normalisation) must not shrink with k
        found = self.store.query(q, n, where=self._where(cid, cat))
        if self.hybrid:
            found = self._fuse(query, q, found, n, cid, cat)
        if not found["ids"]:
            return []
        vectors = np.asarray(found["embeddings"], dtype=np.float32).reshape(len(found["ids"]), -1)
        # the score reported is what ranked the candidates: cosine (dense), fused (hybrid) or cross-encoder
        scores = np.asarray(found["fused"] if "fused" in found else vectors @ q, dtype=np.float32)
        if self.reranker_name:
            scores = np.asarray(self._reranker.predict([(query, d) for d in found["documents"]]), dtype=np.float32)
        relevance = scores
        spread = float(relevance.max() - relevance.min())
        relevance = (relevance - relevance.min()) / spread if spread > 0 else np.ones_like(relevance)
        order = mmr(vectors, relevance, k, self.mmr_lambda)
        return [self._passage(found, i, float(scores[i])) for i in order]

    def _fuse(self, query: str, q: np.ndarray, dense: dict, n: int, cid: str | None, cat: str | None) -> dict:
        """Dense top ``n`` plus BM25 top ``n`` (same filters), ranked by ``w * dense + (1 - w) * bm25``.

        Both scores are min-max normalised: cosine over the candidate union, BM25 by its best score.
        """
        index = self.store.lexical()
        lexical = index.scores(query)
        allowed = index.allowed(cid, cat)
        if allowed is not None:
            lexical = np.where(allowed, lexical, np.float32(0.0))
        known = set(dense["ids"])
        missing = [x for x in index.ids(index.top(lexical, n)) if x not in known]
        extra = self.store.get(missing) if missing else {"ids": []}
        ids = list(dense["ids"]) + list(extra["ids"])
        pool = {key: list(dense[key]) + list(extra.get(key, [])) for key in ("documents", "metadatas", "embeddings")}
        vectors = np.asarray(pool["embeddings"], dtype=np.float32).reshape(len(ids), -1)
        cosine = vectors @ q
        spread = float(cosine.max() - cosine.min()) if len(ids) else 0.0
        dense_norm = (cosine - cosine.min()) / spread if spread > 0 else np.ones_like(cosine)
        best = float(lexical.max()) if len(lexical) else 0.0
        rows = index.rows(ids)
        lexical_norm = np.where(rows >= 0, lexical[np.maximum(rows, 0)] / best, 0.0) if best > 0 else (
            np.zeros(len(ids)))
        fused = self.dense_weight * dense_norm + (1 - self.dense_weight) * lexical_norm
        order = np.argsort(-fused, kind="stable")[:n]
        return {
            "ids": [ids[i] for i in order],
            "documents": [pool["documents"][i] for i in order],
            "metadatas": [pool["metadatas"][i] for i in order],
            "embeddings": [vectors[i] for i in order],
            "fused": [float(fused[i]) for i in order],
        }

    @staticmethod
    def _where(cid: str | None, cat: str | None) -> dict[str, Any] | None:
        clauses = []
        if cid:
            clauses.append({"conditions": {"$contains": cid}})
        if cat:
            clauses.append({"categories": {"$contains": cat}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    @staticmethod
    def _passage(found: dict[str, list], i: int, score: float) -> Passage:
        meta = found["metadatas"][i] or {}
        title, section = meta.get("doc_title", ""), meta.get("section", "")
        text = found["documents"][i] or ""
        prefix = f"{title} — {section}\n\n"
        return Passage(
            id=found["ids"][i],
            title=f"{title} — {section}" if section else title,
            source=meta.get("source", "dermassist guideline summary"),
            text=text.removeprefix(prefix),
            url=meta.get("url"),
            score=round(score, 4),
            condition_ids=list(meta.get("conditions") or []),
        )


def build_default_retriever(
    path: Path | str | None = None,
    *,
    chroma_url: str | None = None,
    embedding_model: str | Embedder | None = None,
    **options: Any,
) -> KnowledgeBaseRetriever:
    """The retriever over the default store (``$DERMASSIST_HOME/kb``), built from the packaged corpus on first use."""
    return KnowledgeBaseRetriever(open_or_build(path, chroma_url=chroma_url, embedder=embedding_model), **options)

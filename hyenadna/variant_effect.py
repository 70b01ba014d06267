"""Zero-shot variant effects: log-likelihood ratio of alt vs ref under the language model.

Input: a VCF (plain or gzip; CHROM POS ID REF ALT, multi-allelic ALT split into one row per
allele) or a TSV (chrom, pos, ref, alt; 1-based; an optional header row), plus the reference
genome (read through pyfaidx). Output: one TSV row per (variant, alt allele).

The score, precisely. For a variant whose REF occupies genome positions [p, p + |REF|) (0-based
p = POS − 1), let m = max(|REF|, |ALT|) and take flanks of F_l = ⌊(W − m)/2⌋ bases on the left
and F_r = W − m − F_l on the right (W = the window option), clipped at the chromosome ends::

    left  = genome[p − F_l, p)            right = genome[p + |REF|, p + |REF| + F_r)
    s_ref = left + REF + right            s_alt = left + ALT + right

Both sequences share exactly the same flanks, so an indel shifts the right flank instead of
swapping bases in or out of the window: the two sequences differ only by the variant. With
log P(s) = Σ_{t=1}^{|s|−1} log p(s_t | s_<t), the next-token log-probabilities of the causal
LM (log-softmax over all of its output rows; the first base has no context and is not scored —
it is the shared left flank's, except for a variant at the very start of a chromosome), the
reported effect is::

    llr = log P(s_alt) − log P(s_ref)        (natural log; > 0: the model prefers ALT)

Both sequences are at most W long; W defaults to the model's context (l_max − 2). Precision
'auto' is fp32 here, also on CUDA (bf16 noise would show in an llr); the LM head and the
log-softmax run in fp32 even with ``--precision bf16``.

Checks, reported in the ``status`` column instead of silently scoring (scores are ``NA``):
``ref_mismatch`` (REF differs from the genome, case-insensitive; the genome's bases are in
``genome_ref``), ``unknown_chrom``, ``out_of_range``, ``symbolic_alt`` (``<DEL>``, ``*``,
breakends), ``no_alt`` (ALT ``.``), ``invalid_allele`` (not A/C/G/T/N; IUPAC allowed in REF),
``too_long`` (an allele longer than W − 2). Scored rows have status ``ok``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from hyenadna.config import VariantEffectConfig
from hyenadna.fasta import open_text
from hyenadna.genome import Genome, Interval
from hyenadna.score import (
    Progress,
    RunSummary,
    autocast,
    batched,
    collate,
    resolve_device,
    resolve_window,
)
from hyenadna.tokenizer import CharTokenizer
from hyenadna.writers import TsvWriter, text_output

log = logging.getLogger(__name__)

COLUMNS = ("chrom", "pos", "id", "ref", "alt", "genome_ref", "window_start", "window_end",
           "ref_loglik", "alt_loglik", "llr", "status")
_ALT_RE = re.compile(r"[ACGTN]+", re.IGNORECASE)
_REF_RE = re.compile(r"[ACGTNRYSWKMBDHV]+", re.IGNORECASE)


@dataclass
class Variant:
    """One alt allele of one input row; ``pos`` is 1-based as in VCF."""

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str


@dataclass
class Scored:
    """A variant with its reference check and, when status is 'ok', its two sequences."""

    variant: Variant
    status: str
    genome_ref: str = ""
    window: tuple[int, int] = (-1, -1)
    ref_seq: str = ""
    alt_seq: str = ""


# ---- reading variants -----------------------------------------------------------------------


def read_variants(path: str) -> Iterator[Variant]:
    """Yield one ``Variant`` per alt allele of a VCF or TSV (told apart by content: a VCF has
    '##fileformat=VCF' / '#CHROM' header lines).

    Raises:
        ValueError: a row with too few columns or a non-integer position, naming file and line.
    """
    source = "<stdin>" if path == "-" else str(path)
    is_vcf, first_row = None, True
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if is_vcf is None and line.strip():
                is_vcf = line.startswith(("##fileformat=VCF", "#CHROM"))
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if is_vcf:
                yield from _vcf_row(fields, source, lineno)
            elif first_row and len(fields) > 1 and not _is_int(fields[1]):
                pass  # a TSV header row (chrom pos ref alt)
            else:
                yield from _tsv_row(fields, source, lineno)
            first_row = False
    if is_vcf is None:
        raise ValueError(f"{source}: no variants (empty file)")


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _position(text: str, source: str, lineno: int) -> int:
    if not _is_int(text):
        raise ValueError(f"{source}: line {lineno}: position {text!r} is not an integer")
    return int(text)


def _vcf_row(fields: list[str], source: str, lineno: int) -> Iterator[Variant]:
    if len(fields) < 5:
        raise ValueError(f"{source}: line {lineno}: a VCF row needs at least 5 tab-separated "
                         f"columns (CHROM POS ID REF ALT), found {len(fields)}")
    chrom, pos, vid, ref, alts = fields[:5]
    for alt in alts.split(","):
        yield Variant(chrom, _position(pos, source, lineno), vid, ref, alt)


def _tsv_row(fields: list[str], source: str, lineno: int) -> Iterator[Variant]:
    if len(fields) < 4:
        raise ValueError(f"{source}: line {lineno}: a variant TSV row needs 4 tab-separated "
                         f"columns (chrom pos ref alt), found {len(fields)}")
    chrom, pos, ref, alt = fields[:4]
    for allele in alt.split(","):
        yield Variant(chrom, _position(pos, source, lineno), ".", ref, allele)


# ---- building the two sequences -------------------------------------------------------------


def allele_status(v: Variant, window: int) -> str:
    """'ok' or why the alleles themselves cannot be scored (before looking at the genome)."""
    if v.alt == ".":
        return "no_alt"
    if v.alt == "*" or v.alt.startswith("<") or "[" in v.alt or "]" in v.alt:
        return "symbolic_alt"
    if not _REF_RE.fullmatch(v.ref) or not _ALT_RE.fullmatch(v.alt):
        return "invalid_allele"
    if max(len(v.ref), len(v.alt)) > window - 2:
        return "too_long"
    return "ok"


def build_pair(v: Variant, genome: Genome, window: int) -> Scored:
    """Check ``v`` against ``genome`` and build s_ref / s_alt."""
    status = allele_status(v, window)
    if status != "ok":
        return Scored(v, status)
    chrom_len = genome.contigs.get(v.chrom)
    if chrom_len is None:
        return Scored(v, "unknown_chrom")
    p, q = v.pos - 1, v.pos - 1 + len(v.ref)  # REF span, 0-based half-open
    if p < 0 or q > chrom_len:
        return Scored(v, "out_of_range")

    def bases(start: int, end: int) -> str:
        return genome.fetch(Interval(v.chrom, start, end)) if end > start else ""

    genome_ref = bases(p, q)
    if genome_ref.upper() != v.ref.upper():
        return Scored(v, "ref_mismatch", genome_ref)
    spare = window - max(len(v.ref), len(v.alt))
    lo, hi = max(0, p - spare // 2), min(chrom_len, q + spare - spare // 2)
    left, right = bases(lo, p), bases(q, hi)
    return Scored(v, "ok", genome_ref, (lo, hi), left + v.ref + right, left + v.alt + right)


# ---- scoring --------------------------------------------------------------------------------


def sequence_loglik(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor
                    ) -> torch.Tensor:
    """log P(s) = Σ_{t≥1} log p(s_t | s_<t) per row.

    Args:
        model: a HyenaDNA LM; ``model(ids)`` → logits (B, L, V).
        ids: (B, L) int64, right-padded. mask: (B, L) bool, True on real tokens.

    Returns:
        (B,) float32 log-likelihoods (natural log).
    """
    hidden = model.backbone(ids)  # (B, L, D), autocast dtype if enabled
    # The LM head and log-softmax always run in fp32: bf16 logits carry ~0.03-nat rounding
    # per token, which summed over thousands of tokens would swamp a small llr.
    with torch.autocast(ids.device.type, enabled=False):
        logits = model.lm_head(hidden.float())  # (B, L, V) float32
    logp = torch.log_softmax(logits[:, :-1], dim=-1)  # (B, L-1, V): predicts tokens 1..L-1
    token_logp = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, L-1)
    return (token_logp * mask[:, 1:]).sum(1)  # padding contributes 0


def variant_effect(cfg: VariantEffectConfig) -> RunSummary:
    """Score every variant of ``cfg.variants`` against ``cfg.genome``; write a TSV.

    Returns:
        RunSummary: records = variant rows written, windows = sequences scored.

    Raises:
        ValueError / FileNotFoundError: unreadable genome, variants or checkpoint.
    """
    from hyenadna.model import HyenaDNA

    for flag, value in (("--model", cfg.model), ("--genome", cfg.genome)):
        if not value:
            raise ValueError(f"variant-effect needs {flag}")
    model = HyenaDNA.from_pretrained(cfg.model)
    genome = open_genome(cfg.genome)  # closed by the `with` below
    window, _ = resolve_window(cfg.window, None, None, model.config.l_max)
    device = resolve_device(cfg.device)
    model.to(device)
    # 'auto' means fp32 here even on CUDA: an llr is a small difference of two large sums, and
    # bf16 noise in the backbone would show in it; --precision bf16 trades that for speed.
    precision = "fp32" if cfg.precision == "auto" else cfg.precision
    log.info("variant-effect: window %d, device %s, precision %s", window, device, precision)
    summary = RunSummary("variant-effect", cfg.output)
    progress = Progress(cfg.progress, "variant-effect", unit=" variants")
    tokenizer = CharTokenizer()
    # Two sequences per variant: batch_size sequences = batch_size // 2 variants per pass.
    chunks = batched(read_variants(cfg.variants), max(1, cfg.batch_size // 2))
    with genome, text_output(cfg.output) as fh:
        table = TsvWriter(fh, COLUMNS)
        try:
            for chunk in chunks:
                pairs = [build_pair(v, genome, window) for v in chunk]
                ok = [p for p in pairs if p.status == "ok"]
                lls = dict(zip(map(id, ok), _score_pairs(model, ok, tokenizer, device,
                                                         precision, summary)))
                for p in pairs:  # input order, scored or not
                    table.write_row(_row(p, lls.get(id(p))))
                summary.records += len(pairs)
                progress.update(len(pairs), len(pairs))
        finally:
            summary.seconds = progress.close()
    return summary


def _score_pairs(model: torch.nn.Module, pairs: list[Scored], tokenizer: CharTokenizer,
                 device: torch.device, precision: str, summary: RunSummary
                 ) -> list[tuple[float, float]]:
    """(log P(s_ref), log P(s_alt)) per pair, from one forward pass over all 2P sequences."""
    if not pairs:
        return []
    seqs = [tokenizer.encode_numpy(s, p.variant.chrom) for p in pairs
            for s in (p.ref_seq, p.alt_seq)]
    ids, mask = collate(seqs, device)  # (2P, L): ref0, alt0, ref1, alt1, ...
    with torch.inference_mode(), autocast(device, precision):
        ll = sequence_loglik(model, ids, mask).cpu().view(-1, 2)  # (P, 2)
    summary.windows += len(seqs)
    summary.nucleotides += sum(len(s) for s in seqs)
    return [tuple(row) for row in ll.tolist()]


def _row(s: Scored, ll: tuple[float, float] | None) -> list:
    v = s.variant
    scores = ["NA"] * 3 if ll is None else [ll[0], ll[1], ll[1] - ll[0]]
    start, end = ("NA", "NA") if s.window[0] < 0 else s.window
    return [v.chrom, v.pos, v.id, v.ref, v.alt, s.genome_ref or "NA", start, end, *scores,
            s.status]


def open_genome(path: str) -> Genome:
    """The reference genome (plain or BGZF FASTA; its index is built when missing), read through
    ``hyenadna.genome.Genome`` — the same reader as pretraining, with its pyfaidx workarounds."""
    if path == "-":
        raise FileNotFoundError("the genome must be a file (an indexed FASTA), not stdin")
    return Genome(path)

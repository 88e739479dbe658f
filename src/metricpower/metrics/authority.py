"""Process 6, taking authority: how many of life's decisions consult the score, set
against how much the score actually knows about a person's true conduct."""

from __future__ import annotations

import numpy as np
import polars as pl

from metricpower.ledger.schema import CITIZENS, CONSEQUENCES, SERVICES
from metricpower.metrics.common import LEVELS, average_ranks, frame, pearson, ranked_auc, ratio


def decisions_gated(consequences, services) -> pl.DataFrame:
    """Share of life decisions (attempts to use a service: fly, take a train, get a job, a
    school place, a loan…) gated by the score — attempts at a service some consequence
    consults — and share whose outcome the score changed (denied, throttled or rewarded);
    by group and overall."""
    cons, svc = frame(consequences), frame(services)
    on_service = cons.filter(pl.col(CONSEQUENCES["service"]).is_not_null())
    gated_services = on_service[CONSEQUENCES["service"]].unique().to_list()
    attempts = pl.col(SERVICES["attempts"]).cast(pl.Int64)
    # lazy, as one query: a query's fixed cost is most of a small table's time
    applied = (on_service.lazy().group_by(CONSEQUENCES["group"])
               .agg(changed=pl.col(CONSEQUENCES["applied"]).sum().cast(pl.Int64)))
    per = svc.lazy().group_by(SERVICES["group"]).agg(
        decisions=attempts.sum(),
        gated=attempts.filter(pl.col(SERVICES["service"]).is_in(gated_services)).sum(),
    ).join(applied, on="group", how="left").with_columns(pl.col("changed").fill_null(0))
    per = per.with_columns(pl.col("gated").cast(pl.Int64)).sort("group")
    total = per.select(pl.col("decisions").sum(), pl.col("gated").sum(),
                       pl.col("changed").sum()).with_columns(group=pl.lit("all"))
    df = pl.concat([total.select(per.collect_schema().names()), per])
    return df.with_columns(gated_share=ratio(pl.col("gated"), pl.col("decisions")),
                           changed_share=ratio(pl.col("changed"), pl.col("decisions"))).collect()


def score_knowledge(citizens, conduct_median: float | None = None,
                    levels=LEVELS) -> pl.DataFrame:
    """How much the score knows about hidden true conduct: Spearman rank correlation
    between final score and conduct, and ROC AUC of the score for telling the better half
    of the population (conduct above the median) from the worse half — 0.5 is a coin
    toss, 1 a perfect ranking; overall, by group and by region."""
    citizens = frame(citizens)
    score, conduct = CITIZENS["score"], CITIZENS["conduct"]
    median = (float(citizens[conduct].median()) if conduct_median is None
              else conduct_median)
    parts = [("all", "all", citizens)]
    for col in levels:
        if CITIZENS.has(citizens, col):
            groups = citizens.select(col, score, conduct).group_by(col)  # the columns read
            for (who,), part in sorted(groups, key=lambda kv: str(kv[0][0])):
                parts.append((col, str(who), part))
    rows = []
    for by, who, part in parts:
        s = part[score].to_numpy().astype(np.float64)
        c = part[conduct].to_numpy().astype(np.float64)
        ranks = average_ranks(s)  # both measures rank the scores
        rows.append({"by": by, "who": who, "citizens": part.height,
                     "spearman": pearson(ranks, average_ranks(c)),
                     "auc": ranked_auc(c > median, ranks)})
    return pl.DataFrame(rows, schema={"by": pl.String, "who": pl.String,
                                      "citizens": pl.Int64, "spearman": pl.Float64,
                                      "auc": pl.Float64})

"""Where the frontier's predictive hull misses jft-1shot's held-out hull (session 6 check).

One frontier fit (2 chains x 300 draws) to the pool of ``simulate("jft-1shot", 1500, 0)``
(the top 10% of models by US accuracy held out, as the study does), then the 90% predictive
hull of the held-out models against their observed hull, per task. Prints which points lie
above, below or inside. About 3 minutes on one core. Run: ``python scripts/jft1shot_hull_check.py``.
"""

import warnings, numpy as np, pandas as pd
warnings.simplefilter("ignore")
from scale_transfer import simulate, fit
from scale_transfer.hull import upper_hull
sim = simulate("jft-1shot", 1500, 0)
df = sim.data
us = df.groupby("model")["us_acc"].first()
cut = us.quantile(0.9)
hold_models = us[us > cut].index
pool = df[~df.model.isin(hold_models)]; hold = df[df.model.isin(hold_models)]
post = fit(pool, target="all", likelihood="frontier", draws=300, tune=300, chains=2, seed=0, progress=False)
print(post.diagnostics.verdict() if hasattr(post.diagnostics, "verdict") else post.diagnostics)
rows=[]
for task in ["caltech","cars","cifar100","imagenet","pets"]:
    h = hold[hold.task==task]
    idx = upper_hull(h.us_acc.to_numpy(), h.ds_acc.to_numpy())
    hu = h.iloc[idx].sort_values("us_acc")
    p = post.predict_hull(h.us_acc.to_numpy(), hu.us_acc.to_numpy(), prob=0.9)
    p = p[p.task==task]
    for (_, r), y in zip(p.iterrows(), hu.ds_acc):
        rows.append((task, r.us_acc, y, r["mean"], r.lower, r.upper))
out = pd.DataFrame(rows, columns=["task","us_acc","held_hull","mean","lower","upper"])
out["pos"] = np.where(out.held_hull>out.upper,"above",np.where(out.held_hull<out.lower,"below","in"))
print(out.round(4).to_string())
print(post.summary(prob=0.9).round(4).to_string())
print(sim.truth)

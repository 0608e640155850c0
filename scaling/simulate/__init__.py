"""A seeded simulator of scaling studies with known, planted laws.

`write_example_data(out_dir, seed=0)` writes a realistic example study and returns the
planted truth (also written to `out_dir/PLANTED.json`); `write_large_training_log` writes a
big W&B-style log for ingest benchmarks. Same seed, byte-identical files.

What is planted (simulator version 1; constants in `scaling.simulate.planted`):

Sweep: 6 model sizes x 5 token budgets = 30 runs. Architectures (n_layer, d_model, batch
tokens): (8, 256, 0.25M), (8, 512, 0.25M), (12, 768, 0.5M), (16, 1024, 0.5M),
(20, 1280, 1M), (18, 2048, 2M); vocab 50304, context 2048;
params = 12 n_layer d_model^2 + 50304 d_model (19.2M, 50.9M, 123.6M, 252.8M, 457.6M,
1009.0M), non_embedding_params = 12 n_layer d_model^2. Budgets 5, 10, 20, 40, 80 tokens per
parameter: steps = round(tpp * N / batch_tokens), tokens = step * batch_tokens.

Final loss (end of schedule): L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022) with
E = 1.76, A = 430, B = 560, alpha = 0.335, beta = 0.305, times exp(eps_run),
eps_run ~ Normal(0, 0.003). Compute-optimal (C = 6ND): N_opt = G (C/6)^a,
D_opt = (C/6)^b / G with a = beta/(alpha+beta) = 0.4765625, b = alpha/(alpha+beta) = 0.5234375,
G = (alpha A / (beta B))^(1/(alpha+beta)) = 0.76633.

Schedules: peak LR = 3e-3 (N/2e7)^-0.6; linear warmup over max(20, 2% of steps); cosine to
10% of peak for 20 runs, WSD (stable, then linear to zero over the last 20% of steps) for the
10 runs with (size index + budget index) divisible by 3. Logged every k steps, k the
smallest of 1, 2, 4, 5, 10, 20, 25, 50, 100, ... with at most 200 rows, plus the final step.

Curves (Tissue et al. 2024 form, "Scaling Law with Learning Rate Annealing"):
L(s) = exp(eps_run) (L0 + 1.15 B S1_tok(s)^-beta - C_run S2(s)), with L0 = E + A/N^alpha,
S1_tok = batch_tokens * sum_{i<=s} eta_i/eta_max, S2 = sum_{i<=s} m_i,
m_i = 0.999 m_{i-1} + (eta_{i-1} - eta_i)/eta_max after warmup (0 during warmup). A constant
LR would leave a run 15% of the Chinchilla data term above it; C_run is solved per run so
that the bracket equals L(N, D) at the last step, so each run ends on its final loss.
Losses are capped at ln(50304). Logged train/loss = L(s) exp(eps), eps ~ Normal(0, 0.003).

Eval sets (loss-to-loss transfer of the noise-free train curve): L_y = K (L - E)^kappa + E_y,
times exp(Normal(0, 0.001)): eval/web/loss K=1.05, kappa=0.95, E_y=1.95; eval/code/loss
K=0.80, kappa=1.15, E_y=1.10; eval/books/loss K=1.12, kappa=1.05, E_y=2.05.

Downstream tasks (final checkpoint): bpb = (K (L_final - E)^kappa + E_bpb) exp(Normal(0, 0.005)),
acc = floor + (ceiling - floor) sigmoid(-k (bpb - bpb0)) + Normal(0, 0.005):
taskA K=0.35 kappa=1.0 E_bpb=0.55 floor=0.25 ceiling=0.95 k=6 bpb0=1.10;
taskB K=0.30 kappa=1.1 E_bpb=0.60 floor=0.50 ceiling=0.90 k=5 bpb0=1.05;
taskC K=0.40 kappa=0.9 E_bpb=0.50 floor=0.25 ceiling=0.85 k=9 bpb0=0.95.
bytes_per_token = 4.2.

Mixture experiment (Ye et al. 2024): train domains web, code, books, papers, wiki; targets
web, code, books, math. L_i(r) = c_i + k_i exp(sum_j t_ij r_j) times exp(Normal(0, 0.003));
c = (2.9, 1.4, 3.1, 2.0), k = (1.4, 1.6, 1.3, 1.5), t rows (over web, code, books, papers, wiki):
web (-1.6, -0.1, -0.4, -0.2, -0.9), code (-0.2, -2.0, 0, -0.1, 0),
books (-0.5, 0, -1.8, -0.1, -0.7), math (-0.2, -0.6, -0.1, -2.0, -0.4).
Weights are Dirichlet(prior (0.45, 0.15, 0.15, 0.15, 0.10) x concentration log-uniform in
[0.5, 5]) rounded to 3 decimals; 120 train and 40 test mixtures. The optimum of the mean
target loss over the simplex is about web 0.317, code 0.390, books 0.138, papers 0.155,
wiki 0 (mean loss 3.1199).

Files: wandb/<run>.csv (W&B history export, 15 runs; evals on every other logged row, blank
between; tokens as int in some files and with ".0" in others), jsonl/<run>.jsonl (15 runs),
runs.csv (per-run metadata), checkpoints.csv (published-style final results with task bpb and
accuracy), mixture/{train,test}_{weights,losses}.csv, PLANTED.json (all of the above, per run
too: schedule, C_run, the noise draws, compute-optimal N and D at the run's compute).
"""

from scaling.simulate.example import write_example_data
from scaling.simulate.large_log import write_large_training_log
from scaling.simulate.planted import SIMULATOR_VERSION

__all__ = ["SIMULATOR_VERSION", "write_example_data", "write_large_training_log"]

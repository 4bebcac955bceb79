"""A small word-level GRU language model in torch, trained from scratch on token blocks.

Each block is modelled from a <s> start, exactly like the n-gram model's padding, so the two
models' perplexities are computed on the same events. Training is seeded through a private
`torch.Generator` (initialisation, batch order, dropout-free), never torch's global seed.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import torch
from torch import nn

from detectors.errors import InvalidInputError, NotFittedError

BOS_ID = 1


class _GRUNet(nn.Module):
    def __init__(self, vocab_size: int, dim: int, num_layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.rnn = nn.GRU(dim, dim, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(dim, vocab_size)
        self.out.weight = (
            self.embed.weight
        )  # tied weights: half the parameters, better small-data fit

    def forward(
        self, tokens: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, state = self.rnn(self.embed(tokens), state)
        return self.out(hidden), state


class GRULanguageModel:
    """`fit` on blocks [n, L] of token ids; `token_log_probs`, `perplexity`, and
    `sample_continuations` (temperature sampling) like `KneserNeyLM`."""

    def __init__(
        self,
        *,
        vocab_size: int,
        dim: int = 128,
        num_layers: int = 1,
        epochs: int = 4,
        batch_size: int = 32,
        learning_rate: float = 5e-3,
        temperature: float = 1.0,
        random_state: int = 0,
    ) -> None:
        if vocab_size < 3:
            raise InvalidInputError(f"vocab_size must be at least 3, got {vocab_size}")
        if min(dim, num_layers, epochs, batch_size) < 1:
            raise InvalidInputError("dim, num_layers, epochs and batch_size must be positive")
        if temperature <= 0 or learning_rate <= 0:
            raise InvalidInputError("temperature and learning_rate must be positive")
        self.vocab_size = vocab_size
        self.dim = dim
        self.num_layers = num_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.random_state = random_state

    def _tensor(self, blocks: np.ndarray) -> torch.Tensor:
        arr = np.asarray(blocks, dtype=np.int64)
        if arr.ndim != 2 or arr.size == 0:
            raise InvalidInputError("blocks must be a non-empty [n_blocks, block_size] array")
        if arr.min() < 0 or arr.max() >= self.vocab_size:
            raise InvalidInputError(f"token ids must be in [0, {self.vocab_size})")
        return torch.from_numpy(arr)

    @staticmethod
    def _inputs(targets: torch.Tensor) -> torch.Tensor:
        bos = torch.full((len(targets), 1), BOS_ID, dtype=torch.long)
        return torch.cat([bos, targets[:, :-1]], dim=1)

    def fit(self, blocks: np.ndarray) -> Self:
        targets = self._tensor(blocks)
        gen = torch.Generator().manual_seed(int(self.random_state))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
            net = _GRUNet(self.vocab_size, self.dim, self.num_layers)
        optimiser = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        loss_fn = nn.CrossEntropyLoss()
        losses = []
        net.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(targets), generator=gen)
            total = 0.0
            for start in range(0, len(targets), self.batch_size):
                y = targets[order[start : start + self.batch_size]]
                logits, _ = net(self._inputs(y))
                loss = loss_fn(logits.reshape(-1, self.vocab_size), y.reshape(-1))
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimiser.step()
                total += float(loss.detach()) * len(y)
            losses.append(total / len(targets))
        net.eval()
        self.net_ = net
        self.train_losses_ = losses
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("GRULanguageModel is not fitted: call fit() first")

    @torch.no_grad()
    def token_log_probs(self, blocks: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Natural-log probability of every token [n, L], each block from a <s> start."""
        self._check_fitted()
        targets = self._tensor(blocks)
        out = []
        for start in range(0, len(targets), batch_size):
            y = targets[start : start + batch_size]
            logits, _ = self.net_(self._inputs(y))
            out.append(torch.log_softmax(logits, dim=-1).gather(-1, y[..., None])[..., 0])
        return torch.cat(out).numpy().astype(float)

    def perplexity(self, blocks: np.ndarray) -> float:
        return float(np.exp(-self.token_log_probs(blocks).mean()))

    @torch.no_grad()
    def sample_continuations(
        self, prompts: np.ndarray, length: int, rng: np.random.Generator, *, batch_size: int = 512
    ) -> np.ndarray:
        """`length` tokens after each prompt [B, P] (read from a <s> start), at the temperature."""
        self._check_fitted()
        prompt = self._tensor(prompts)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        out = []
        for start in range(0, len(prompt), batch_size):
            x = prompt[start : start + batch_size]
            bos = torch.full((len(x), 1), BOS_ID, dtype=torch.long)
            logits, state = self.net_(torch.cat([bos, x], dim=1))
            step = logits[:, -1]
            tokens = []
            for _ in range(length):
                probs = torch.softmax(step / self.temperature, dim=-1)
                tok = torch.multinomial(probs, 1, generator=gen)
                tokens.append(tok)
                logits, state = self.net_(tok, state)
                step = logits[:, -1]
            out.append(torch.cat(tokens, dim=1))
        return torch.cat(out).numpy().astype(np.int64)

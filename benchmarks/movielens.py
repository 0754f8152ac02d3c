"""Seeded simulation of ratings with MovieLens' shape (no data from the internet).

``simulate_ratings(n_ratings, n_users, n_movies, seed)`` returns a table of ``user``, ``movie`` and
``rating`` where, as in MovieLens:

- every (user, movie) pair occurs at most once, and every user rates at least ``MIN_PER_USER`` movies;
- activity is heavy-tailed: beyond the minimum, a user's share of the ratings is lognormal
  (``ACTIVITY_SIGMA``; for 1M ratings of 6,040 users the mean is 166 and the maximum ~2,000), capped
  at the number of movies;
- popularity is heavy-tailed: a movie's weight is lognormal (``POPULARITY_SIGMA``), and each user's
  movies are a weighted sample without replacement (the Gumbel top-k trick: the k largest of
  log weight + Gumbel noise);
- ratings are integers 1 to 5: 3.6 + user effect (sd 0.45) + movie effect (sd 0.5) + noise
  (sd 0.9), rounded and clipped, so that ``rating ~ 1 + (1 | user) + (1 | movie)`` has variance
  components of MovieLens' order.

Shapes of the real data sets: ``SHAPES["1m"]`` (1,000,209 ratings, 6,040 users x 3,706 movies) and
``SHAPES["10m"]`` (10,000,054 ratings, 69,878 users x 10,677 movies). The same arguments give the same
table on every run (``numpy.random.default_rng(seed)``, draws in a fixed order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHAPES = {"1m": (1_000_209, 6_040, 3_706), "10m": (10_000_054, 69_878, 10_677)}
MIN_PER_USER = 20
ACTIVITY_SIGMA, POPULARITY_SIGMA = 0.8, 1.6
MEAN, SD_USER, SD_MOVIE, SD_NOISE = 3.6, 0.45, 0.5, 0.9
# Users whose movies are drawn together (one Gumbel matrix of this many rows x n_movies at a time).
USERS_PER_DRAW = 2_000


def activity(n_ratings: int, n_users: int, n_movies: int, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: at least MIN_PER_USER, at most n_movies, summing to n_ratings exactly."""
    if not MIN_PER_USER * n_users <= n_ratings <= n_users * n_movies:
        raise ValueError(f"{n_ratings:,} ratings cannot give {n_users:,} users {MIN_PER_USER} to {n_movies:,} each")
    weights = rng.lognormal(0.0, ACTIVITY_SIGMA, n_users)
    counts = np.full(n_users, MIN_PER_USER, dtype=np.int64)
    extra = n_ratings - counts.sum()
    while extra > 0:  # share the rest by weight; users at the cap drop out of the next round
        room = n_movies - counts
        share = np.where(room > 0, weights, 0.0)
        add = np.minimum(np.floor(extra * share / share.sum()).astype(np.int64), room)
        if add.sum() == 0:  # the last few: one each to the heaviest users with room
            order = np.argsort(-share, kind="stable")[:extra]
            add = np.zeros(n_users, dtype=np.int64)
            add[order[room[order] > 0]] = 1
        counts += add
        extra = n_ratings - counts.sum()
    return counts


def simulate_ratings(n_ratings: int, n_users: int, n_movies: int, seed: int = 1) -> pd.DataFrame:
    """Ratings table of MovieLens' shape (module docstring), sorted by user then movie."""
    rng = np.random.default_rng(seed)
    counts = activity(n_ratings, n_users, n_movies, rng)
    log_popularity = rng.normal(0.0, POPULARITY_SIGMA, n_movies)
    users, movies = [], []
    for start in range(0, n_users, USERS_PER_DRAW):
        block = counts[start : start + USERS_PER_DRAW]
        keys = log_popularity + rng.gumbel(size=(len(block), n_movies))
        order = np.argsort(-keys, axis=1, kind="stable")
        for offset, k in enumerate(block):
            users.append(np.full(k, start + offset, dtype=np.int64))
            movies.append(np.sort(order[offset, :k]))
    user, movie = np.concatenate(users), np.concatenate(movies)
    _cover_every_movie(user, movie, n_movies)
    order = np.lexsort((movie, user))
    user, movie = user[order], movie[order]
    effect_user = rng.normal(0.0, SD_USER, n_users)
    effect_movie = rng.normal(0.0, SD_MOVIE, n_movies)
    noise = rng.normal(0.0, SD_NOISE, len(user))
    rating = np.clip(np.rint(MEAN + effect_user[user] + effect_movie[movie] + noise), 1, 5)
    return pd.DataFrame(
        {
            "user": pd.Categorical(_labels("u", user, n_users)),
            "movie": pd.Categorical(_labels("m", movie, n_movies)),
            "rating": rating,
        }
    )


def _cover_every_movie(user: np.ndarray, movie: np.ndarray, n_movies: int) -> None:
    """Every movie rated at least once, as in MovieLens: an unrated movie replaces, in the list of
    the most active user without it, that user's most rated movie (counts per user unchanged)."""
    ratings = np.bincount(movie, minlength=n_movies)
    by_activity = np.argsort(-np.bincount(user), kind="stable")
    starts = np.searchsorted(user, np.arange(user.max() + 2))
    for unrated in np.flatnonzero(ratings == 0):
        for u in by_activity:
            rows = np.arange(starts[u], starts[u + 1])
            if unrated not in movie[rows]:
                replaced = rows[np.argmax(ratings[movie[rows]])]
                ratings[movie[replaced]] -= 1
                movie[replaced], ratings[unrated] = unrated, 1
                break


def _labels(prefix: str, codes: np.ndarray, n: int) -> pd.Categorical:
    """Level labels u000001, ... in code order (the factor's levels sorted as R sorts them)."""
    width = len(str(n))
    names = np.array([f"{prefix}{i + 1:0{width}d}" for i in range(n)])
    return pd.Categorical.from_codes(codes, categories=names)


def simulate_shape(name: str, seed: int = 1) -> pd.DataFrame:
    """A simulation of one of ``SHAPES`` ("1m", "10m")."""
    return simulate_ratings(*SHAPES[name], seed=seed)

"""The results of a search, independent of Ray and MLflow: trial records, the Pareto front, hypervolume."""

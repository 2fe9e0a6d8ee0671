"""A grade round: the pipeline, its jobs (local forks or Dask tasks), the workers' job server, progress, preloading."""

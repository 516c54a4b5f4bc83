# PersAI: one image for the API, the workers and the Llama Stack server (the `stack` group).
FROM python:3.12-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-dev --group stack
COPY persai ./persai
COPY worker ./worker
RUN uv sync --locked --no-dev --group stack
RUN useradd --system --uid 10001 persai && mkdir -p /data && chown persai /data
USER persai
EXPOSE 8000 9464
CMD ["uvicorn", "--factory", "persai.server:from_environment", "--host", "0.0.0.0", "--port", "8000"]

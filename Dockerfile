# One image for `tesk serve`, `tesk taskmaster` and `tesk filer`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tesk ./tesk
RUN pip install --no-cache-dir . && useradd --uid 10001 --create-home tesk
USER 10001
ENTRYPOINT ["tesk"]
CMD ["serve", "--host", "0.0.0.0"]

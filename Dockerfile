# plantbridge worker / gateway image: the product only (plantbridge/); the dev tools in devtools/ never enter
# the image (tests/test_packaging.py checks this file and the wheel it builds).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY plantbridge ./plantbridge
RUN pip install --no-cache-dir '.[postgres]' && useradd --system --uid 10001 plantbridge && mkdir -p /data && chown plantbridge /data
USER plantbridge
ENV PLANTBRIDGE_STORE_URL=sqlite+aiosqlite:////data/plantbridge.db \
    PLANTBRIDGE_REFERENCE_URL=sqlite+aiosqlite:////data/reference-systems.db
ENTRYPOINT ["plantbridge"]
CMD ["worker"]

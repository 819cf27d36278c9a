# One image for the web server, Celery and every consumer (docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home console && mkdir -p /data/inbox /data/quarantine && chown -R console /data /app
USER console
EXPOSE 8000
CMD ["gunicorn", "console.asgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]

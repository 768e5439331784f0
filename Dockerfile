FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# gunicorn binds HOST:PORT (config/gunicorn.conf.py). Its default HOST is 127.0.0.1, right for
# `make run` on a laptop; inside a container that would be unreachable from the published port
# and from the other containers, so the image binds every interface.
ENV HOST=0.0.0.0 \
    PORT=8000
# gunicorn's control socket would live under the app user's home, which does not exist (nothing
# but /app/media and /tmp is writable); the image does without it.
ENV GUNICORN_CMD_ARGS=--no-control-socket

WORKDIR /app
# Runtime dependencies only: requirements-dev.txt (tests, linters, the embedded PostgreSQL) stays
# out of the image.
COPY requirements.txt .
RUN pip install -r requirements.txt

# The code and the collected static files belong to root and are read-only for the app user
# (uid 10001): a compromised process cannot rewrite the application. It may write only to
# /app/media (uploaded files, a volume in docker-compose.yml) and /tmp.
COPY . .
# collectstatic needs a key only to import the settings; the real one comes at run time.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=postgres://unused@localhost/unused \
    python manage.py collectstatic --noinput \
 && find /app ! -type l -perm /022 -exec chmod go-w {} + \
 && groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shop \
 && mkdir -p /app/media \
 && chown shop:shop /app/media
USER 10001:10001

EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]

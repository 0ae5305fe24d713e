# syntax=docker/dockerfile:1
# The mpisearch image for the Kubeflow MPI Operator (see helm/README.md):
# Debian slim + Python 3.11, MPICH from PyPI (the `mpich` wheel mpisearch's
# [mpich] extra uses) in a venv, mpisearch, and sshd on port 2222 running as
# the non-root user mpiuser, set up as in the operator's own base images
# (kubeflow/mpi-operator build/base). Build from the repository root:
#
#   docker build -t REGISTRY/mpisearch:0.1.0 .
FROM python:3.11-slim-bookworm

ARG SSH_PORT=2222
ARG MPICH_VERSION=5.0.2
ARG MPI4PY_VERSION=4.1.2

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# openssh-server pulls in openssh-client (the launcher's mpiexec uses it).
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /run/sshd

# ssh client: the workers' port, no host-key prompts. The operator mounts its
# keys read-only at /home/mpiuser/.ssh, so known_hosts must not be written.
RUN printf 'Host *\n    Port %s\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n' \
        "$SSH_PORT" > /etc/ssh/ssh_config.d/mpi-operator.conf

# MPICH + mpi4py + mpisearch in a venv. mpiexec launches hydra_pmi_proxy on the
# workers by its absolute path (/opt/venv/bin); the ranks find mpisearch through
# the PATH mpiexec forwards, and through /usr/local/bin (ssh's default PATH).
COPY pyproject.toml README.md /src/
COPY mpisearch /src/mpisearch
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install "mpich==${MPICH_VERSION}" "mpi4py==${MPI4PY_VERSION}" \
    && pip install "/src[mpich]" \
    && ln -s "$VIRTUAL_ENV/bin/mpisearch" /usr/local/bin/mpisearch \
    && rm -rf /src \
    && mpiexec -n 2 python -c "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2" \
    && mpisearch --help > /dev/null

# The launcher's mpiexec reaches the workers through this ssh wrapper, which ends the
# job when a worker host goes silent (see the chart's ssh.wrapper).
COPY --chmod=0755 examples/mpiexec-ssh /usr/local/bin/mpiexec-ssh

RUN useradd --create-home --uid 1000 --shell /bin/bash mpiuser
USER mpiuser
WORKDIR /home/mpiuser

# sshd as mpiuser (the chart's workers run `/usr/sbin/sshd -De -f ~/.sshd_config`):
# its own host key, generated here; clients authorised by the operator's
# mounted authorized_keys. StrictModes no: the Secret's files are root-owned.
RUN mkdir -m 700 .sshd \
    && ssh-keygen -q -t ed25519 -N '' -f .sshd/ssh_host_ed25519_key \
    && printf '%s\n' \
        "Port $SSH_PORT" \
        "PidFile /home/mpiuser/.sshd/sshd.pid" \
        "HostKey /home/mpiuser/.sshd/ssh_host_ed25519_key" \
        "AuthorizedKeysFile /home/mpiuser/.ssh/authorized_keys" \
        "StrictModes no" \
        "PubkeyAuthentication yes" \
        "PasswordAuthentication no" \
        "KbdInteractiveAuthentication no" \
        "UsePAM no" \
        "X11Forwarding no" \
        "PrintMotd no" \
        > .sshd_config \
    && /usr/sbin/sshd -t -f /home/mpiuser/.sshd_config

EXPOSE ${SSH_PORT}
CMD ["mpisearch", "--help"]

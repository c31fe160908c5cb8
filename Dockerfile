# mmigrate in a container: Debian 12, the binary, its man pages and shell
# completion, running as an unprivileged user.
#
#   docker build -t mmigrate .
#   docker run --rm -v "$PWD:/work" -e MM_SOURCE_TOKEN -e MM_TARGET_TOKEN \
#       mmigrate apply --state-dir /work/.mmigrate/acme plans/acme.yaml
#
# Mounting a checkout owned by another user: git (and so mmigrate's plan
# provenance and --rev) refuses it unless it is marked safe; see docs/gitops.md.

# ---- build ----------------------------------------------------------------
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	&& cmake --build build -j"$(nproc)" --target mmigrate \
	&& build/mmigrate --version

# ---- runtime --------------------------------------------------------------
FROM debian:bookworm-slim
# The shared libraries the build links against (the .deb's Depends), and the
# CA bundle libcurl verifies servers with.
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		libyaml-0-2 libcurl4 libcjson1 libzip4 libgit2-1.5 libssl3 ca-certificates \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/mmigrate /usr/bin/mmigrate
COPY --from=build /src/docs/man/mmigrate.1 /usr/share/man/man1/mmigrate.1
COPY --from=build /src/docs/man/mmigrate-plan.5 /usr/share/man/man5/mmigrate-plan.5
COPY --from=build /src/contrib/completion/mmigrate.bash /usr/share/bash-completion/completions/mmigrate
COPY --from=build /src/contrib/completion/_mmigrate /usr/share/zsh/vendor-completions/_mmigrate
# A fixed numeric uid, so that Kubernetes' runAsNonRoot can check it.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/mmigrate mmigrate \
	&& mkdir -p /state /work && chown mmigrate:mmigrate /state /work
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/bin/mmigrate"]
CMD ["--help"]

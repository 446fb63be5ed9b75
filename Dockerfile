# Multi-stage build of the single berth binary. Needs an image registry (docker.io), which this
# project's development machines cannot reach; CI tests run the same entry point with `deno run`.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY raft ./raft
COPY src ./src
RUN deno install --frozen --entrypoint src/main.ts \
 && deno compile --allow-all --output /berth src/main.ts

FROM gcr.io/distroless/cc-debian12
COPY --from=build /berth /usr/local/bin/berth
VOLUME /var/lib/berth
EXPOSE 8300 8500 8600/udp 8600/tcp 80
ENTRYPOINT ["/usr/local/bin/berth"]
CMD ["agent"]

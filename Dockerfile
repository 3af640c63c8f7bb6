# kmt: one static binary (loadgen, validator, run, render, ...) for the
# scenario charts. Build: docker build -t kmt:dev .   (kind: kind load docker-image kmt:dev)
FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that runs on a distroless base.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/kmt ./cmd/kmt

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kmt /usr/local/bin/kmt
# 65532 = distroless "nonroot", the uid the charts' securityContext expects.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kmt"]

# syntax=docker/dockerfile:1
# A small static image: the binary and CA roots, no shell, non-root.
#   docker build -t sluice:latest .
# Without Docker: `go run ./cmd/sluice-image` writes the same image (static
# binary, user 65532, ENTRYPOINT /sluice) as an archive (docs/kubernetes.md).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/sluice ./cmd/sluice

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice /sluice
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["/sluice"]
CMD ["run", "--config", "/etc/sluice/sluice.yaml"]

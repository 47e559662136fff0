// nfqueue-delay: holds every packet of one NFQUEUE for a fixed time, then accepts it, in order.
//
//   nfqueue-delay QUEUE_NUM DELAY_US
//
// Binds queue QUEUE_NUM of the network namespace it runs in, prints "ready" on stdout once bound,
// and from then on gives each queued packet NF_ACCEPT DELAY_US microseconds after it read it.
// tools/delay-netns.mjs builds it and runs it inside a namespace whose loopback queues every packet
// here, which makes a link with a round trip of 2 x DELAY_US: this kernel has no sch_netem, and a
// delay made in the kernel's path, unlike a user-space proxy, leaves TCP's own windows, slow start
// and slow start after idle in charge. SIGTERM or SIGINT: accepts what it holds, exits 0.
//
// How: the kernel numbers queued packets in order, and a batch verdict (NFQNL_MSG_VERDICT_BATCH)
// on id N accepts every packet it holds up to N. A packet's delay is the same for all, so packets
// fall due in the order they came: a ring of (id, due time), and one batch verdict per wake-up for
// the newest packet due. Only metadata is copied to us (NFQNL_COPY_META: no payload), and a
// loopback GSO packet of up to 64 KiB comes whole (NFQA_CFG_F_GSO), not cut into segments first:
// a read and a verdict cost the same for 64 KiB as for an ACK. Messages are read in batches
// (recvmmsg), all stamped with the time of the read that took them.
//
// Nothing is dropped below ~10 Gbit/s at a 10 ms RTT (see QUEUE_MAXLEN and RECEIVE_BUFFER_BYTES).
// Beyond that the kernel drops and counts it (queue_dropped and queue_user_dropped in
// /proc/net/netfilter/nfnetlink_queue, which delay-netns.mjs reports): fail-open
// (NFQA_CFG_F_FAIL_OPEN) is deliberately not set, because it would accept an overflowing packet at
// once, ahead of the packets held before it: an undelayed, reordered packet that no counter shows.
// A drop is what a real link does when its buffer overflows, and TCP recovers from it visibly.

#define _GNU_SOURCE // recvmmsg, ppoll
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/types.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

/*
 * Packets the kernel may hold for us at once (its default is 1024). At 10 Gbit/s and 10 ms RTT,
 * 12.5 MB are in flight each way: ~200 loopback GSO packets, or ~17,000 if they were 1500-byte
 * packets both ways; 65,536 leaves room for many small packets besides. It costs nothing until
 * used: the kernel holds only what is queued, and our ring is 16 bytes a slot (1 MiB).
 */
#define QUEUE_MAXLEN 65536u
/*
 * The netlink socket's receive buffer: every held packet's message fits in it at once (a message
 * of ours is 64 bytes, but the buffer counts the kernel's allocation, under 1 KiB), so the
 * socket never overflows before the queue does. Set with SO_RCVBUFFORCE, past net.core.rmem_max:
 * it is a bound, not an allocation.
 */
#define RECEIVE_BUFFER_BYTES (QUEUE_MAXLEN * 1024)
/* Messages taken per recvmmsg; each slot holds one message (metadata only: a few hundred bytes). */
#define READ_BATCH 64
#define MESSAGE_BYTES 8192
/*
 * Timer slack for our wake-ups: the default 50 us would let each hop run up to 50 us late;
 * 1 us keeps the delay exact to the scheduler's latency.
 */
#define TIMER_SLACK_NS 1000
/*
 * Realtime priority, the lowest there is: a hold must end on time on a busy machine. A wire does
 * not wait for the CPU, nor do the kernel's softirqs, whose work (TCP's receive path for each
 * packet released) runs in our verdicts here. We use well under a CPU-second per GiB passed.
 */
#define REALTIME_PRIORITY 1

struct held {
  uint32_t id;
  uint64_t due_ns;
};

static struct held ring[QUEUE_MAXLEN];
static uint32_t head, count, most_held;
static uint64_t packets, verdict_errors;

static struct mnl_socket *nl;
static uint32_t queue_num;
static volatile sig_atomic_t stopping;

static void on_signal(int signal) {
  (void)signal;
  stopping = 1;
}

static void die(const char *what) {
  fprintf(stderr, "nfqueue-delay: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sends one config message and waits for the kernel's answer: a refusal (EPERM, EBUSY) is fatal. */
static void configure(const char *what, void (*put)(struct nlmsghdr *)) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue_num);
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = (uint32_t)now_ns();
  put(nlh);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) die(what);
  ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
  if (n < 0) die(what);
  if (mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL, NULL) < 0) die(what);
}

static void put_bind(struct nlmsghdr *nlh) { nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND); }
static void put_copy_meta(struct nlmsghdr *nlh) { nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_META, 0); }
static void put_maxlen(struct nlmsghdr *nlh) { nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN); }
static void put_gso(struct nlmsghdr *nlh) {
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
}

/* Accepts every held packet up to and including `id`, in the order they came. */
static void accept_through(uint32_t id) {
  char buf[256];
  struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, queue_num);
  nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) die("sending a verdict");
}

/* Accepts the packets due by `now` (all of them when `now` is UINT64_MAX). */
static void release(uint64_t now) {
  uint32_t released = 0, last = 0;
  while (count > 0 && ring[head].due_ns <= now) {
    last = ring[head].id;
    head = (head + 1) % QUEUE_MAXLEN;
    count--;
    released++;
  }
  if (released > 0) accept_through(last);
}

/* One message from the kernel: a queued packet, or the answer to a verdict that failed. */
static void take(const struct nlmsghdr *nlh, uint64_t due) {
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
    if (err->error != 0) {
      // Not fatal: the kernel no longer held the packet (it flushed the queue).
      verdict_errors++;
      fprintf(stderr, "nfqueue-delay: a verdict was refused: %s\n", strerror(-err->error));
    }
    return;
  }
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) return;
  struct nlattr *attr[NFQA_MAX + 1] = {0};
  if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) {
    fprintf(stderr, "nfqueue-delay: a packet message without its header\n");
    exit(1);
  }
  const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
  if (count == QUEUE_MAXLEN) {
    // The kernel holds at most QUEUE_MAXLEN: more would mean ids we were never told of.
    fprintf(stderr, "nfqueue-delay: more than %u packets held\n", QUEUE_MAXLEN);
    exit(1);
  }
  ring[(head + count) % QUEUE_MAXLEN] = (struct held){.id = ntohl(ph->packet_id), .due_ns = due};
  if (++count > most_held) most_held = count;
  packets++;
}

static struct mmsghdr messages[READ_BATCH];
static struct iovec iovs[READ_BATCH];
static char buffers[READ_BATCH][MESSAGE_BYTES];

/*
 * Reads what the socket holds, a batch at a time, releasing what falls due between batches;
 * returns once the socket is empty.
 */
static void read_all(uint64_t delay_ns) {
  for (;;) {
    for (int i = 0; i < READ_BATCH; i++) messages[i].msg_hdr.msg_flags = 0;
    int n = recvmmsg(mnl_socket_get_fd(nl), messages, READ_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("reading the queue");
    }
    uint64_t now = now_ns();
    for (int i = 0; i < n; i++) {
      if (messages[i].msg_hdr.msg_flags & MSG_TRUNC) {
        fprintf(stderr, "nfqueue-delay: a message longer than %d bytes\n", MESSAGE_BYTES);
        exit(1);
      }
      int len = (int)messages[i].msg_len;
      for (const struct nlmsghdr *nlh = (const void *)buffers[i]; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
        take(nlh, now + delay_ns);
      }
    }
    release(now);
    if (n < READ_BATCH) return;
  }
}

static unsigned long parse(const char *text, const char *what, unsigned long max) {
  char *end;
  errno = 0;
  unsigned long value = strtoul(text, &end, 10);
  if (errno || end == text || *end || value > max || text[0] == '-') {
    fprintf(stderr, "nfqueue-delay: %s must be a whole number up to %lu, got '%s'\n", what, max, text);
    exit(2);
  }
  return value;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: nfqueue-delay QUEUE_NUM DELAY_US\n");
    return 2;
  }
  queue_num = (uint32_t)parse(argv[1], "QUEUE_NUM", 65535);
  // An hour: anything longer is a unit mistake.
  const uint64_t delay_ns = (uint64_t)parse(argv[2], "DELAY_US", 3600000000ul) * 1000u;

  prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS);
  struct sched_param priority = {.sched_priority = REALTIME_PRIORITY};
  if (sched_setscheduler(0, SCHED_FIFO, &priority) < 0) {
    fprintf(stderr, "nfqueue-delay: no realtime priority (%s): on a busy machine holds may end late\n", strerror(errno));
  }
  nl = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl) die("opening a netfilter netlink socket");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) die("binding the netlink socket");
  int fd = mnl_socket_get_fd(nl);
  int size = RECEIVE_BUFFER_BYTES, one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) die("SO_RCVBUFFORCE (needs CAP_NET_ADMIN)");
  // Past a full buffer the kernel counts the drop (queue_user_dropped); an ENOBUFS error on our
  // reads on top of it would tell us nothing more.
  if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one) < 0) die("NETLINK_NO_ENOBUFS");

  configure("binding the queue", put_bind);
  configure("asking for metadata only", put_copy_meta);
  configure("setting the queue's length", put_maxlen);
  configure("asking for whole GSO packets", put_gso);

  for (int i = 0; i < READ_BATCH; i++) {
    iovs[i] = (struct iovec){.iov_base = buffers[i], .iov_len = MESSAGE_BYTES};
    messages[i].msg_hdr = (struct msghdr){.msg_iov = &iovs[i], .msg_iovlen = 1};
  }

  // The signals are blocked except inside ppoll, so one cannot slip in between the check of
  // `stopping` and the wait.
  sigset_t blocked, during_wait;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigprocmask(SIG_BLOCK, &blocked, &during_wait);
  struct sigaction action = {.sa_handler = on_signal};
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);

  printf("ready\n");
  fflush(stdout);

  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  while (!stopping) {
    struct timespec wait, *timeout = NULL;
    if (count > 0) {
      uint64_t now = now_ns(), due = ring[head].due_ns;
      uint64_t left = due > now ? due - now : 0;
      wait = (struct timespec){.tv_sec = (time_t)(left / 1000000000u), .tv_nsec = (long)(left % 1000000000u)};
      timeout = &wait;
    }
    int ready = ppoll(&pfd, 1, timeout, &during_wait);
    if (ready < 0 && errno != EINTR) die("waiting");
    if (ready > 0) read_all(delay_ns);
    release(now_ns());
  }
  release(UINT64_MAX);
  fprintf(stderr, "nfqueue-delay: %" PRIu64 " packets, at most %u held at once, %" PRIu64 " verdicts refused\n", packets, most_held, verdict_errors);
  mnl_socket_close(nl);
  return 0;
}

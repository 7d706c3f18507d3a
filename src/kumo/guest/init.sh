#!/bin/busybox sh
# kumo-tiny /init: report what the guest sees on the serial console, stay up, and honour
# ACPI power-down. Every line meant for the host starts with "kumo-guest:".
/bin/busybox mkdir -p /proc /sys /dev /tmp /var/log /mnt/config /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
# The serial console always; the screen too (tty1, when the guest has a display), so a
# VNC viewer sees the guest at work.
say() {
    echo "kumo-guest: $*"
    [ -n "$screen" ] && echo "kumo-guest: $*" >"$screen" 2>/dev/null
}
screen=""
say "start $(cut -d' ' -f1 /proc/uptime)"

while read -r module; do
    insmod "/lib/modules/$module" 2>/dev/null
done </etc/modules.order
# The display's driver, for a guest with a display (a VGA-class PCI device) only.
if grep -qs '^0x0300' /sys/bus/pci/devices/*/class; then
    while read -r module; do
        insmod "/lib/modules/$module" 2>/dev/null
    done </etc/modules.display
fi

[ -e /sys/class/graphics/fb0 ] && [ -c /dev/tty1 ] && screen=/dev/tty1

# busybox acpid silently exits without /var/log; the handler is /etc/acpi/PWRF/00000080.
acpid -c /etc/acpi -l /var/log/acpid.log

ip link set lo up
hostname kumo-tiny
config=""
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    config=$(findfs LABEL=config-2 2>/dev/null) && break
    sleep 0.2
done
if [ -n "$config" ] && mount -t iso9660 -o ro "$config" /mnt/config 2>/dev/null \
    || { [ -n "$config" ] && mount -o ro "$config" /mnt/config 2>/dev/null; }; then
    md=/mnt/config/openstack/latest/meta_data.json
    flat=$(tr -d '\n' <"$md")
    name=$(echo "$flat" | sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p')
    [ -n "$name" ] && hostname "$name"
    say "hostname $(hostname)"
    mkdir -p /root/.ssh
    echo "$flat" | grep -o '"public_keys": *{[^}]*}' \
        | sed 's/^"public_keys": *{//; s/}$//; s/", *"/"\n"/g' \
        | sed -n 's/^ *"[^"]*": *"\(.*\)" *$/\1/p' | sed 's/\\n$//' \
        | while read -r key; do say "key $key"; echo "$key" >>/root/.ssh/authorized_keys; done
    if [ -f /mnt/config/openstack/latest/user_data ]; then
        say "user-data $(head -n 1 /mnt/config/openstack/latest/user_data)"
        # As cloud-init does: user data that starts with #! is a script to run.
        if [ "$(head -c 2 /mnt/config/openstack/latest/user_data)" = "#!" ]; then
            cp /mnt/config/openstack/latest/user_data /tmp/user-script
            chmod +x /tmp/user-script
            /tmp/user-script >/dev/console 2>&1 &
        fi
    fi
else
    say "hostname $(hostname)"
    say "no config drive"
fi

# SSH (when the image carries dropbear): keys only, host keys made on first use.
if [ -x /usr/sbin/dropbear ]; then
    mkdir -p /dev/pts /etc/dropbear
    mount -t devpts devpts /dev/pts
    chmod 700 /root /root/.ssh 2>/dev/null
    /usr/sbin/dropbear -R -s -p 22 && say "sshd"
fi

for path in /sys/class/net/*; do
    nic=${path##*/}
    [ "$nic" = lo ] && continue
    ip link set "$nic" up
    (udhcpc -i "$nic" -O staticroutes -s /etc/udhcpc.sh -q -n -t 10 -T 1 >/dev/null 2>&1 \
        || say "dhcp-failed $nic") &
done

# A login prompt on the screen, as a cloud image has (no passwords: nobody logs in).
if [ -n "$screen" ]; then
    (while :; do getty 0 tty1 linux; sleep 1; done) >/dev/null 2>&1 &
fi

known=" "
n=0
while :; do
    for path in /sys/block/*; do
        disk=${path##*/}
        case "$disk" in loop*|ram*) continue ;; esac
        case "$known" in *" $disk "*) continue ;; esac
        known="$known$disk "
        serial=$(cat "$path/serial" 2>/dev/null)
        say "disk $disk${serial:+ $serial}"
    done
    for disk in $known; do  # hot-unplugged: say so, and a disk with its name is new again
        [ -e "/sys/block/$disk" ] && continue
        known=$(echo "$known" | sed "s/ $disk / /")
        say "disk-gone $disk"
    done
    [ $((n % 2)) -eq 0 ] && say "alive $((n / 2))"
    n=$((n + 1))
    sleep 1
done

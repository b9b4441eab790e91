#!/usr/bin/perl
# Writes a City-shaped MaxMind DB for the tests, with Debian's
# libmaxmind-db-writer-perl (MaxMind's own writer).
#   write_mmdb.pl SPEC.json OUT.mmdb [DATABASE_TYPE]
# SPEC.json: [{ "network": "192.0.2.0/24", "continent": "EU", "country": "DE",
#               "subdivision": "BY", "lat": 48.1, "lon": 11.6 }, ...]
# (every field but network optional), or SPEC.tsv with those six columns. IPv4 networks are aliased into the
# IPv4-mapped and 6to4 spaces, as in MaxMind's own databases.
use strict;
use warnings;
use JSON::PP;
use MaxMind::DB::Writer::Tree;

my ($spec_file, $out, $type) = @ARGV;
die "usage: $0 SPEC.json OUT.mmdb [TYPE]\n" unless $spec_file && $out;
$type ||= 'GeoLite2-City';
open my $in, '<', $spec_file or die "$spec_file: $!\n";
my $spec;
if ($spec_file =~ /\.tsv$/) {  # big ones (the bench): NETWORK CONTINENT COUNTRY SUBDIVISION LAT LON per line
  $spec = [];
  while (my $line = <$in>) {
    chomp $line;
    my ($net, $c, $k, $s, $lat, $lon) = split /\t/, $line;
    push @$spec, { network => $net, continent => $c, country => $k, subdivision => $s, lat => $lat, lon => $lon };
  }
} else {
  $spec = decode_json(do { local $/; <$in> });
}

my %types = (
  continent => 'map', country => 'map', location => 'map', subdivisions => ['array', 'map'],
  code => 'utf8_string', iso_code => 'utf8_string', latitude => 'double', longitude => 'double',
  names => 'map', en => 'utf8_string',
);
my $tree = MaxMind::DB::Writer::Tree->new(
  ip_version => 6, record_size => 28, database_type => $type, languages => ['en'],
  description => { en => 'vane test database' }, map_key_type_callback => sub { $types{ $_[0] } },
  alias_ipv6_to_ipv4 => 1, remove_reserved_networks => 0,
);
for my $n (@$spec) {
  my %rec;
  $rec{continent} = { code => $n->{continent} } if $n->{continent};
  $rec{country} = { iso_code => $n->{country}, names => { en => $n->{country} } } if $n->{country};
  $rec{subdivisions} = [ { iso_code => $n->{subdivision} } ] if $n->{subdivision};
  $rec{location} = { latitude => $n->{lat} + 0.0, longitude => $n->{lon} + 0.0 } if defined $n->{lat} && $n->{lat} ne '';
  $tree->insert_network($n->{network}, \%rec);
}
my $tmp = "$out.tmp$$";
open my $fh, '>:raw', $tmp or die "$tmp: $!\n";
$tree->write_tree($fh);
close $fh or die "$tmp: $!\n";
rename $tmp, $out or die "$out: $!\n";  # atomically, as geoipupdate does

// Reader of a listener's Spotify streaming history in every export form (../shared/DATA.md §5):
//   account data:  StreamingHistory<N>.json and StreamingHistory_music_<N>.json, records
//                  {endTime, artistName, trackName, msPlayed}; StreamingHistory_podcast_<N>.json is ignored;
//   extended:      Streaming_History_Audio_<years>[_n].json and the older endsong_<N>.json, records with ts,
//                  ms_played, master_metadata_track_name, master_metadata_album_artist_name, ... ;
//                  rows whose track is null (podcasts, audiobooks) are skipped; Streaming_History_Video_* ignored.
// A listener is a folder of such files (searched recursively) or a list of files. A file that does not
// parse or has records of neither form is an error naming the file and the record.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace musicrec::data {

struct SpotifyPlay {
  std::string artist, track, end_time;  // end_time as the file gives it
  int64_t ms_played = 0;
};

struct SpotifyHistory {
  std::vector<SpotifyPlay> plays;
  int64_t files = 0, ignored_files = 0, skipped_records = 0;  // skipped: podcast/audiobook rows
};

// Whether a file name is one of the export files (and music, not podcast or video).
bool is_spotify_music_file(const std::string& filename);
bool is_spotify_file(const std::string& filename);

SpotifyHistory read_spotify_history(const std::vector<std::string>& paths);

struct TopSong {
  std::string artist, track;
  int64_t plays = 0, ms_played = 0;
};

// The n most played songs. A play counts from min_ms of listening (30 s by default). Order: plays,
// then total time, then artist and title; by_ms orders by total time first.
std::vector<TopSong> top_songs(const SpotifyHistory& h, size_t n, int64_t min_ms = 30000, bool by_ms = false);

}  // namespace musicrec::data
